"""Decode many CRIU images with crit's own library, exactly as ``crit decode -i FILE`` does.

Run by crit's interpreter (the first line of /usr/bin/crit), not by the test interpreter:
    python3 _crit_batch.py FILE... > {"FILE": <crit decode output>, ...}
One process for all images instead of one ``crit`` process per image keeps the tests fast;
tests/test_criu_reference.py checks on a few images that the two give the same JSON.
"""

import json
import sys

import pycriu.images

out = {}
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        try:
            out[path] = pycriu.images.load(f, False, False)
        except Exception as exc:  # crit refuses it too
            out[path] = {"error": repr(exc)}
# Which fields crit's own schema knows, per message: newer fields are unknown to it.
schema = {}
for module in list(sys.modules.values()):
    if getattr(module, "__name__", "").startswith("pycriu.images.") and hasattr(
        module, "DESCRIPTOR"
    ):
        for name, desc in module.DESCRIPTOR.message_types_by_name.items():
            schema[name] = [f.name for f in desc.fields]
out["__schema__"] = schema
json.dump(out, sys.stdout)
