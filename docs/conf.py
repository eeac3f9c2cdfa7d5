"""Sphinx configuration for LinkRTC's documentation."""

project = "LinkRTC"
author = "LinkRTC developers"
extensions = []
master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
