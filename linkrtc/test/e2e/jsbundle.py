"""
Bundle an npm package written as CommonJS modules (JsSIP: C{lib/JsSIP.js}
and its dependencies C{debug}, C{events}, C{sdp-transform}) into one
browser script, for the end-to-end tests: a small C{require} over a table
of module functions, the package's export in C{window[NAME]}.

Resolution follows Node's for what these packages use: relative paths
(C{.js}, C{.json}, C{index.js}), packages under C{node_modules} by their
C{package.json} (C{browser} when it is a path, else C{main}).
"""

import json
import os
import re

_REQUIRE = re.compile(r"""\brequire\(\s*['"]([^'"]+)['"]\s*\)""")


def _resolveFile(path):
    for candidate in (path, path + ".js", path + ".json", os.path.join(path, "index.js")):
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    raise FileNotFoundError(path)


def _packageEntry(directory):
    with open(os.path.join(directory, "package.json")) as f:
        meta = json.load(f)
    entry = meta.get("browser") if isinstance(meta.get("browser"), str) else None
    return _resolveFile(os.path.join(directory, entry or meta.get("main") or "index.js"))


def resolve(name, fromFile, nodeModules):
    """
    @param name: what C{require} was given.
    @param fromFile: the path of the requiring module.
    @param nodeModules: the C{node_modules} directory.
    @return: the real path of the module's file.
    @raise FileNotFoundError: when it cannot be found.
    """
    if name.startswith("./") or name.startswith("../"):
        return _resolveFile(os.path.join(os.path.dirname(fromFile), name))
    parts = name.split("/")
    count = 2 if name.startswith("@") else 1
    package = os.path.join(nodeModules, *parts[:count])
    rest = parts[count:]
    if rest:
        return _resolveFile(os.path.join(package, *rest))
    return _packageEntry(package)


def bundle(nodeModules, package, globalName):
    """
    @param nodeModules: the C{node_modules} directory the package was
        installed in (C{npm install --prefix DIR}: C{DIR/node_modules}).
    @param package: the package's name (C{"jssip"}).
    @param globalName: the C{window} property that gets its export.
    @return: the script (C{str}).
    """
    entry = _packageEntry(os.path.join(nodeModules, package))
    ids, order, pending = {entry: 0}, [entry], [entry]
    maps = {}
    while pending:
        path = pending.pop()
        with open(path, encoding="utf-8") as f:
            source = f.read()
        table = {}
        if not path.endswith(".json"):
            for name in set(_REQUIRE.findall(source)):
                target = resolve(name, path, nodeModules)
                if target not in ids:
                    ids[target] = len(order)
                    order.append(target)
                    pending.append(target)
                table[name] = ids[target]
        maps[path] = table
    parts = ["(function () {\n'use strict';\n",
             "var process = {env: {}, browser: true, argv: []};\n",
             "var defs = [];\n"]
    for path in order:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        if path.endswith(".json"):
            body = "module.exports = " + source + ";"
        else:
            body = source
        parts.append(f"defs[{ids[path]}] = [{json.dumps(maps[path])}, "
                     "function (require, module, exports) {\n" + body + "\n}];\n")
    parts.append(
        "var cache = {};\n"
        "function load(id) {\n"
        "  if (cache[id]) return cache[id].exports;\n"
        "  var module = cache[id] = {exports: {}};\n"
        "  var def = defs[id];\n"
        "  def[1].call(module.exports, function (name) {\n"
        "    if (!(name in def[0])) throw new Error('cannot require ' + name);\n"
        "    return load(def[0][name]);\n"
        "  }, module, module.exports);\n"
        "  return module.exports;\n"
        "}\n"
        f"window[{json.dumps(globalName)}] = load(0);\n"
        "})();\n")
    return "".join(parts)
