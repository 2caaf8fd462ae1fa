#!/usr/bin/env python3
"""An independent reader for TensorBoard event files, used by //convforever/train:tensorboard_test.

Written without TensorFlow, tensorboard or protobuf (none is installed on the build machine), and
deliberately not sharing code or approach with the C++ writer: the CRC-32C here is the bitwise
definition (no table), and the protobuf decoder is a generic wire-format walker.

Usage: tfevents_reader.py FILE
Prints one JSON object per event:
  {"wall_time": float, "step": int, "file_version": str?, "session_status": int?, "values": [{"tag", "simple_value"} |
   {"tag", "plugin", "text"}]}
Exits 1 with "FILE: record N at offset O: <what>" on a bad length CRC, data CRC or truncation.
"""
import json
import math
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    result, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yields (field_number, wire_type, value) for a serialized message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def decode_value(buf):
    out = {}
    for number, _, value in fields(buf):
        if number == 1:
            out["tag"] = value.decode("utf-8")
        elif number == 2:
            v = struct.unpack("<f", value)[0]
            out["simple_value"] = v if math.isfinite(v) else repr(v)
        elif number == 8:  # TensorProto: string_val = 8
            for n, _, v in fields(value):
                if n == 8:
                    out["text"] = v.decode("utf-8")
        elif number == 9:  # SummaryMetadata.plugin_data(1).plugin_name(1)
            for n, _, plugin_data in fields(value):
                if n == 1:
                    for m, _, name in fields(plugin_data):
                        if m == 1:
                            out["plugin"] = name.decode("utf-8")
    return out


def decode_event(buf):
    event = {"wall_time": 0.0, "step": 0, "values": []}
    for number, _, value in fields(buf):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3:
            event["file_version"] = value.decode("utf-8")
        elif number == 7:  # SessionLog: status = 1 (1 = START, 2 = STOP, 3 = CHECKPOINT)
            event["session_status"] = 0
            for n, _, v in fields(value):
                if n == 1:
                    event["session_status"] = v
        elif number == 5:
            for n, _, v in fields(value):
                if n == 1:
                    event["values"].append(decode_value(v))
    return event


def main(path):
    with open(path, "rb") as f:
        data = f.read()
    pos, index = 0, 0
    while pos < len(data):
        where = "%s: record %d at offset %d" % (path, index, pos)
        if pos + 12 > len(data):
            sys.exit(where + ": truncated header")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(crc32c(header)) != length_crc:
            sys.exit(where + ": bad length CRC")
        if pos + 12 + length + 4 > len(data):
            sys.exit(where + ": truncated data")
        payload = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked(crc32c(payload)) != data_crc:
            sys.exit(where + ": bad data CRC")
        print(json.dumps(decode_event(payload)))
        pos += 16 + length
        index += 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
