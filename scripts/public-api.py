#!/usr/bin/env python3
"""The public API of a crate, one item per line, from rustdoc's JSON output.

Usage: scripts/public-api.py target/…/doc/<crate>.json

Walks the crate from its root through public modules and re-exports and prints every
public item's path and kind; for types, their public fields, variants, inherent methods and
the traits they implement (not auto or blanket impls); for traits, their items. The test
command compares this with the committed `public-api/<crate>.txt`, so that growth of the
public surface is a reviewed decision.
"""
import json
import sys


KNOWN_FORMAT = 57


def main(path):
    doc = json.load(open(path))
    if doc.get("format_version") != KNOWN_FORMAT:
        print(
            f"rustdoc JSON format {doc.get('format_version')}, this script reads "
            f"{KNOWN_FORMAT}: update it with the toolchain",
            file=sys.stderr,
        )
        sys.exit(3)
    index = doc["index"]
    out = set()

    def item(i):
        return index.get(str(i))

    def kind_of(it):
        return next(iter(it["inner"]))

    def type_name(t):
        # A short rendering of a trait path in an impl.
        if t is None:
            return None
        return t.get("path") or t.get("name") or "?"

    def members(it, path):
        kind = kind_of(it)
        inner = it["inner"][kind]
        if kind == "enum":
            for v in inner.get("variants", []):
                var = item(v)
                if var:
                    out.add(f"{path}::{var['name']} (variant)")
        if kind == "struct":
            fields = inner.get("kind", {})
            plain = fields.get("plain") if isinstance(fields, dict) else None
            if plain:
                for f in plain.get("fields", []):
                    fi = item(f)
                    if fi and fi.get("visibility") == "public":
                        out.add(f"{path}.{fi['name']} (field)")
        if kind == "trait":
            for m in inner.get("items", []):
                mi = item(m)
                if mi:
                    out.add(f"{path}::{mi['name']} ({kind_of(mi)})")
        for impl_id in inner.get("impls", []) if isinstance(inner, dict) else []:
            impl = item(impl_id)
            if not impl:
                continue
            body = impl["inner"]["impl"]
            if body.get("is_synthetic") or body.get("blanket_impl"):
                continue
            trait = type_name(body.get("trait"))
            if trait:
                out.add(f"{path}: impl {trait}")
                continue
            for m in body.get("items", []):
                mi = item(m)
                if mi and mi.get("visibility") == "public":
                    out.add(f"{path}::{mi['name']} ({kind_of(mi)})")

    def walk(module_id, prefix, seen):
        if module_id in seen:
            return
        seen.add(module_id)
        module = item(module_id)
        for child_id in module["inner"]["module"]["items"]:
            child = item(child_id)
            if not child or child.get("visibility") != "public":
                continue
            kind = kind_of(child)
            if kind == "use":
                use = child["inner"]["use"]
                name = use["name"]
                target = item(use["id"]) if use.get("id") is not None else None
                if use.get("is_glob"):
                    if target and kind_of(target) == "module":
                        walk(use["id"], prefix, seen)
                    continue
                if target is None:
                    out.add(f"{prefix}::{name} (re-export of {use['source']})")
                elif kind_of(target) == "module":
                    out.add(f"{prefix}::{name} (module)")
                    walk(use["id"], f"{prefix}::{name}", seen)
                else:
                    out.add(f"{prefix}::{name} ({kind_of(target)})")
                    members(target, f"{prefix}::{name}")
                continue
            name = child.get("name")
            if kind == "module":
                out.add(f"{prefix}::{name} (module)")
                walk(child_id, f"{prefix}::{name}", seen)
            elif kind == "impl":
                continue
            else:
                out.add(f"{prefix}::{name} ({kind})")
                members(child, f"{prefix}::{name}")

    root = doc["root"]
    walk(root, item(root)["name"], set())
    print("\n".join(sorted(out)))


if __name__ == "__main__":
    main(sys.argv[1])
