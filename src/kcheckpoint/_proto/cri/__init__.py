"""Generated protobuf code; do not edit. Regenerate with scripts/gen_proto.py."""
