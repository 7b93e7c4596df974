"""Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf)."""
from kubegate.protobuf.codec import (
    MAGIC, ProtobufError, decode_message, decode_object, encode_message, encode_object,
)

__all__ = ["MAGIC", "ProtobufError", "decode_message", "decode_object", "encode_message", "encode_object"]
