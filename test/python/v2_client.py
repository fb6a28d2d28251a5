#!/usr/bin/env python3
"""An independent Open Inference Protocol ("KServe v2") client for modelgate's tests.

REST with Python's http.client (JSON, and Triton's binary tensor data extension); gRPC with Debian's
python3-grpcio over protos/inference/grpc_service.proto compiled here with grpc_tools (protoc). The
gateway serves the test repository (test/helpers/repo.ts: half_plus_two v123, add_sub, mlp v1/v2
with labels stable/canary, dtypes: identity for every dtype, broken).

Usage: v2_client.py --rest HOST:PORT --grpc HOST:PORT --protos DIR --workdir DIR
Prints one "ok - <check>" or "not ok - <check>: <why>" line per check, then "N passed, M failed";
exits 1 if any check failed, 2 if the proto does not compile.
"""
import argparse
import http.client
import json
import os
import struct
import sys

from checks import Checks, protoc

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
TEXT = ["héllo", "日本語", "", "emoji \U0001F600"]

# name suffix → (datatype, struct code, values)
DTYPES = [
    ("float16", "FP16", "e", [1.5, -2.0, 0.25, 65504.0]),
    ("float", "FP32", "f", [1.5, -2.25, 3.0e10, 0.1]),
    ("double", "FP64", "d", [1.5, -2.25, 1e300, 0.1]),
    ("int8", "INT8", "b", [-128, 127, 0, 5]),
    ("int16", "INT16", "h", [-32768, 32767, 0, 5]),
    ("int32", "INT32", "i", [-2147483648, 2147483647, 0, 5]),
    ("int64", "INT64", "q", [INT64_MIN, INT64_MAX, 9007199254740993, -5]),
    ("uint8", "UINT8", "B", [0, 255, 1, 5]),
    ("uint16", "UINT16", "H", [0, 65535, 1, 5]),
    ("uint32", "UINT32", "I", [0, 4294967295, 1, 5]),
    ("uint64", "UINT64", "Q", [0, UINT64_MAX, 9007199254740993, 5]),
    ("bool", "BOOL", "?", [True, False, True, True]),
    ("string", "BYTES", None, TEXT),
]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected_values(code, values):
    return [f32(v) for v in values] if code == "f" else list(values)


def pack(code, values):
    if code is None:
        out = b""
        for v in values:
            b = v.encode("utf-8") if isinstance(v, str) else v
            out += struct.pack("<I", len(b)) + b
        return out
    return struct.pack("<%d%s" % (len(values), code), *values)


def unpack(code, data, count):
    if code is None:
        out, pos = [], 0
        while pos < len(data):
            (n,) = struct.unpack_from("<I", data, pos)
            out.append(data[pos + 4:pos + 4 + n].decode("utf-8"))
            pos += 4 + n
        return out
    return list(struct.unpack("<%d%s" % (count, code), data))


def compile_proto(protos, workdir):
    protoc(protos, workdir, ["inference/grpc_service.proto"])
    open(os.path.join(workdir, "inference", "__init__.py"), "w").close()
    sys.path.insert(0, workdir)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rest", required=True)
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--protos", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    compile_proto(args.protos, args.workdir)

    import grpc
    from inference import grpc_service_pb2 as pb
    from inference import grpc_service_pb2_grpc as pb_grpc

    host, port = args.rest.rsplit(":", 1)
    checks = Checks()
    check, expect = checks.check, checks.expect

    def request(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode("utf-8")
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, dict((k.lower(), v) for k, v in res.getheaders()), res.read()
        finally:
            conn.close()

    def get_json(path, status=200):
        code, _, body = request("GET", path)
        doc = json.loads(body)
        expect(code, status, "status of GET %s (%r)" % (path, doc))
        return doc

    def infer(path, doc, status=200):
        code, headers, body = request("POST", path, doc, {"Content-Type": "application/json"})
        parsed = json.loads(body)
        expect(code, status, "status of POST %s (%r)" % (path, parsed))
        expect(headers.get("content-type"), "application/json", "content-type")
        return parsed

    def expect_error(code_and_doc, status, contains):
        code, doc = code_and_doc
        expect(code, status, "status (%r)" % (doc,))
        if set(doc.keys()) != {"error"} or not isinstance(doc["error"], str):
            raise AssertionError("not an error body: %r" % (doc,))
        if contains not in doc["error"]:
            raise AssertionError("error %r does not mention %r" % (doc["error"], contains))

    def post_raw(path, body, headers=None):
        code, _, out = request("POST", path, body, headers or {"Content-Type": "application/json"})
        return code, json.loads(out)

    # ---------------------------------------------------------------- REST: health and metadata

    @check("REST GET /v2 server metadata")
    def _():
        doc = get_json("/v2")
        expect(doc["name"], "modelgate", "name")
        expect("binary_tensor_data" in doc["extensions"], True, "extensions %r" % doc["extensions"])
        if not isinstance(doc["version"], str) or not doc["version"]:
            raise AssertionError("no version")

    @check("REST health live and ready")
    def _():
        expect(get_json("/v2/health/live"), {"live": True}, "live")
        expect(get_json("/v2/health/ready"), {"ready": True}, "ready")

    @check("REST model metadata half_plus_two")
    def _():
        doc = get_json("/v2/models/half_plus_two")
        expect(doc["name"], "half_plus_two", "name")
        expect(doc["versions"], ["123"], "versions")
        expect(doc["platform"], "onnxruntime_onnx", "platform")
        expect(doc["inputs"], [{"name": "x", "datatype": "FP32", "shape": [-1]}], "inputs")
        expect(doc["outputs"], [{"name": "y", "datatype": "FP32", "shape": [-1]}], "outputs")
        expect(get_json("/v2/models/half_plus_two/versions/123")["name"], "half_plus_two", "by version")

    @check("REST model metadata mlp by label, unknown dims as -1")
    def _():
        doc = get_json("/v2/models/mlp/versions/canary")
        expect(sorted(doc["versions"]), ["1", "2"], "versions")
        expect(doc["inputs"], [{"name": "images", "datatype": "FP32", "shape": [-1, 784]}], "inputs")

    @check("REST model ready (latest, version, label; broken not ready)")
    def _():
        expect(get_json("/v2/models/half_plus_two/ready"), {"name": "half_plus_two", "ready": True}, "latest")
        expect(get_json("/v2/models/mlp/versions/1/ready")["ready"], True, "version")
        expect(get_json("/v2/models/mlp/versions/stable/ready")["ready"], True, "label")
        expect(get_json("/v2/models/broken/ready", 400)["ready"], False, "broken")

    @check("REST unknown model, version and label are 404 errors")
    def _():
        for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/mlp/versions/7", "/v2/models/mlp/versions/nolabel"):
            code, _, body = request("GET", path)
            expect_error((code, json.loads(body)), 404, "unknown model")
        expect_error(post_raw("/v2/models/nope/infer", b'{"inputs":[]}'), 404, "Request for unknown model: 'nope' is not found")

    # ---------------------------------------------------------------- REST: infer, JSON

    @check("REST infer half_plus_two: id echoed, version, data")
    def _():
        doc = infer("/v2/models/half_plus_two/infer",
                    {"id": "req-1", "parameters": {"anything": 1},
                     "inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1.0, 2.0, 5.0]}]})
        expect(doc["model_name"], "half_plus_two", "model_name")
        expect(doc["model_version"], "123", "model_version")
        expect(doc["id"], "req-1", "id")
        expect(doc["outputs"], [{"name": "y", "datatype": "FP32", "shape": [3], "data": [2.5, 3.0, 4.5]}], "outputs")

    @check("REST infer nested data, versions by number and label, default latest")
    def _():
        images = [[0.5] * 784, [0.25] * 784]
        body = {"inputs": [{"name": "images", "shape": [2, 784], "datatype": "FP32", "data": images}]}
        for path, version in (("/v2/models/mlp/infer", "2"), ("/v2/models/mlp/versions/1/infer", "1"),
                              ("/v2/models/mlp/versions/stable/infer", "1"), ("/v2/models/mlp/versions/canary/infer", "2")):
            doc = infer(path, body)
            expect(doc["model_version"], version, path)
            expect(doc["outputs"][0]["shape"], [2, 10], "shape")
            expect(len(doc["outputs"][0]["data"]), 20, "flat row-major data")

    @check("REST infer requested outputs, in the order asked")
    def _():
        inputs = [{"name": "input_x", "shape": [1, 2], "datatype": "FP32", "data": [[1, 2]]},
                  {"name": "input_y", "shape": [1, 2], "datatype": "FP32", "data": [10, 20]}]
        doc = infer("/v2/models/add_sub/infer", {"inputs": inputs, "outputs": [{"name": "result_sub"}]})
        expect([o["name"] for o in doc["outputs"]], ["result_sub"], "one output")
        expect(doc["outputs"][0]["data"], [-9.0, -18.0], "values")
        doc = infer("/v2/models/add_sub/infer", {"inputs": inputs, "outputs": [{"name": "result_sub"}, {"name": "result_add"}]})
        expect([o["name"] for o in doc["outputs"]], ["result_sub", "result_add"], "order")
        expect_error(post_raw("/v2/models/add_sub/infer", json.dumps({"inputs": inputs, "outputs": [{"name": "zzz"}]}).encode()),
                     400, "unexpected inference output 'zzz'")

    def dtype_inputs():
        return [{"name": "in_" + n, "shape": [4], "datatype": dt, "data": vals} for n, dt, _, vals in DTYPES]

    @check("REST infer every datatype as JSON (int64/uint64 exact, non-ASCII BYTES)")
    def _():
        code, _, body = request("POST", "/v2/models/dtypes/infer", json.dumps({"inputs": dtype_inputs()}).encode("utf-8"))
        expect(code, 200, "status %r" % body[:300])
        doc = json.loads(body)  # Python's json keeps big integers exact
        outs = {o["name"]: o for o in doc["outputs"]}
        for n, dt, code_, vals in DTYPES:
            o = outs["out_" + n]
            expect(o["datatype"], dt, n)
            expect(o["shape"], [4], n)
            got = [f32(v) for v in o["data"]] if code_ == "f" else o["data"]
            expect(got, expected_values(code_, vals), n)
        expect(outs["out_string_bytes"]["data"], TEXT, "string bytes")

    # ---------------------------------------------------------------- REST: binary tensor data

    def binary_request(header, blobs):
        head = json.dumps(header).encode("utf-8")
        return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head)),
                                        "Content-Type": "application/octet-stream"}

    def split_binary(headers, body):
        n = int(headers["inference-header-content-length"])
        return json.loads(body[:n]), body[n:]

    @check("REST binary extension: every datatype in and out as raw bytes")
    def _():
        inputs, blobs = [], []
        for n, dt, code_, vals in DTYPES:
            blob = pack(code_, vals)
            blobs.append(blob)
            inputs.append({"name": "in_" + n, "shape": [4], "datatype": dt, "parameters": {"binary_data_size": len(blob)}})
        outputs = [{"name": "out_" + n, "parameters": {"binary_data": True}} for n, _, _, _ in DTYPES]
        body, headers = binary_request({"inputs": inputs, "outputs": outputs}, blobs)
        code, rh, out = request("POST", "/v2/models/dtypes/infer", body, headers)
        expect(code, 200, "status %r" % out[:300])
        expect(rh.get("content-type"), "application/octet-stream", "content-type")
        doc, rest = split_binary(rh, out)
        pos = 0
        for (n, dt, code_, vals), o in zip(DTYPES, doc["outputs"]):
            expect(o["name"], "out_" + n, "order")
            expect(o["datatype"], dt, n)
            size = o["parameters"]["binary_data_size"]
            expect(unpack(code_, rest[pos:pos + size], 4), expected_values(code_, vals) if code_ != "e" else vals, n)
            pos += size
        expect(pos, len(rest), "binary section length")

    @check("REST binary extension: mixed JSON and binary inputs, binary_data_output, one JSON output")
    def _():
        blob = struct.pack("<3f", 1.0, 2.0, 5.0)
        header = {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": len(blob)}}],
                  "parameters": {"binary_data_output": True}}
        body, headers = binary_request(header, [blob])
        code, rh, out = request("POST", "/v2/models/half_plus_two/infer", body, headers)
        expect(code, 200, "status %r" % out[:300])
        doc, rest = split_binary(rh, out)
        expect(doc["outputs"][0]["parameters"]["binary_data_size"], 12, "size")
        expect(list(struct.unpack("<3f", rest)), [2.5, 3.0, 4.5], "values")
        header = {"inputs": [{"name": "input_x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
                             {"name": "input_y", "shape": [1, 2], "datatype": "FP32", "data": [10, 20]}],
                  "outputs": [{"name": "result_add", "parameters": {"binary_data": False}}]}
        body, headers = binary_request(header, [struct.pack("<2f", 1.0, 2.0)])
        code, rh, out = request("POST", "/v2/models/add_sub/infer", body, headers)
        expect(code, 200, "status %r" % out[:300])
        expect(rh.get("content-type"), "application/json", "JSON only")
        expect("inference-header-content-length" in rh, False, "no header")
        expect(json.loads(out)["outputs"][0]["data"], [11.0, 22.0], "values")

    # ---------------------------------------------------------------- REST: errors

    @check("REST errors: wrong datatype, data length, malformed JSON, binary size")
    def _():
        path = "/v2/models/half_plus_two/infer"
        expect_error(post_raw(path, json.dumps({"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 2, 5]}]}).encode()),
                     400, "data-type is 'INT32'")
        expect_error(post_raw(path, json.dumps({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1, 2, 5]}]}).encode()),
                     400, "has 3 elements")
        expect_error(post_raw(path, json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}).encode()),
                     400, "expects 'FP32'")
        expect_error(post_raw(path, b'{"inputs": [{"name": "x", '), 400, "JSON Parse error")
        expect_error(post_raw(path, b'[1, 2]'), 400, "JSON object")
        expect_error(post_raw(path, json.dumps({"inputs": [{"name": "q", "shape": [1], "datatype": "FP32", "data": [1]}]}).encode()),
                     400, "unexpected inference input 'q'")
        body, headers = binary_request({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]},
                                       [b"\0" * 8])
        expect_error(post_raw(path, body, headers), 400, "bytes of raw data")
        expect_error(post_raw(path, b'{}', {"Inference-Header-Content-Length": "99"}), 400, "Inference-Header-Content-Length")

    # ---------------------------------------------------------------- gRPC

    channel = grpc.insecure_channel(args.grpc)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def expect_rpc_error(fn, code, contains):
        try:
            fn()
        except grpc.RpcError as e:
            expect(e.code(), code, "code (%s)" % e.details())
            if contains not in e.details():
                raise AssertionError("details %r do not mention %r" % (e.details(), contains))
            return
        raise AssertionError("no error")

    @check("gRPC ServerLive, ServerReady, ServerMetadata")
    def _():
        expect(stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live, True, "live")
        expect(stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready, True, "ready")
        md = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=30)
        expect(md.name, "modelgate", "name")
        expect("binary_tensor_data" in md.extensions, True, "extensions")

    @check("gRPC ModelReady and ModelMetadata (labels as versions)")
    def _():
        expect(stub.ModelReady(pb.ModelReadyRequest(name="half_plus_two"), timeout=30).ready, True, "ready")
        expect(stub.ModelReady(pb.ModelReadyRequest(name="mlp", version="canary"), timeout=30).ready, True, "label ready")
        expect(stub.ModelReady(pb.ModelReadyRequest(name="broken"), timeout=30).ready, False, "broken")
        md = stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp", version="stable"), timeout=30)
        expect(md.name, "mlp", "name")
        expect(sorted(md.versions), ["1", "2"], "versions")
        expect(md.platform, "onnxruntime_onnx", "platform")
        expect([(t.name, t.datatype, list(t.shape)) for t in md.inputs], [("images", "FP32", [-1, 784])], "inputs")
        expect([(t.name, t.datatype, list(t.shape)) for t in md.outputs], [("probabilities", "FP32", [-1, 10])], "outputs")

    def half_plus_two_request(raw):
        req = pb.ModelInferRequest(model_name="half_plus_two", id="g-1")
        t = req.inputs.add(name="x", datatype="FP32", shape=[3])
        if raw:
            req.raw_input_contents.append(struct.pack("<3f", 1.0, 2.0, 5.0))
        else:
            t.contents.fp32_contents.extend([1.0, 2.0, 5.0])
        return req

    @check("gRPC ModelInfer half_plus_two with typed contents")
    def _():
        res = stub.ModelInfer(half_plus_two_request(False), timeout=30)
        expect((res.model_name, res.model_version, res.id), ("half_plus_two", "123", "g-1"), "names")
        o = res.outputs[0]
        expect((o.name, o.datatype, list(o.shape)), ("y", "FP32", [3]), "output")
        expect(list(o.contents.fp32_contents), [2.5, 3.0, 4.5], "values")
        expect(len(res.raw_output_contents), 0, "no raw")

    @check("gRPC ModelInfer half_plus_two with raw_input_contents")
    def _():
        res = stub.ModelInfer(half_plus_two_request(True), timeout=30)
        expect(list(struct.unpack("<3f", res.raw_output_contents[0])), [2.5, 3.0, 4.5], "values")

    @check("gRPC ModelInfer every datatype raw (BYTES non-ASCII)")
    def _():
        req = pb.ModelInferRequest(model_name="dtypes")
        for n, dt, code_, vals in DTYPES:
            req.inputs.add(name="in_" + n, datatype=dt, shape=[4])
            req.raw_input_contents.append(pack(code_, vals))
        res = stub.ModelInfer(req, timeout=30)
        by_name = {o.name: (o, res.raw_output_contents[i]) for i, o in enumerate(res.outputs)}
        for n, dt, code_, vals in DTYPES:
            o, raw = by_name["out_" + n]
            expect((o.datatype, list(o.shape)), (dt, [4]), n)
            expect(unpack(code_, raw, 4), expected_values(code_, vals) if code_ != "e" else vals, n)

    @check("gRPC ModelInfer every datatype typed (FP16 via fp32_contents), requested outputs typed")
    def _():
        req = pb.ModelInferRequest(model_name="dtypes")
        field = {"FP16": "fp32_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "INT8": "int_contents",
                 "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
                 "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
                 "BOOL": "bool_contents", "BYTES": "bytes_contents"}
        for n, dt, code_, vals in DTYPES:
            t = req.inputs.add(name="in_" + n, datatype=dt, shape=[4])
            getattr(t.contents, field[dt]).extend([v.encode("utf-8") for v in vals] if dt == "BYTES" else vals)
        wanted = [n for n, _, _, _ in DTYPES if n != "float16"]
        for n in wanted:
            req.outputs.add(name="out_" + n)
        res = stub.ModelInfer(req, timeout=30)
        expect([o.name for o in res.outputs], ["out_" + n for n in wanted], "requested outputs")
        expect(len(res.raw_output_contents), 0, "typed answer")
        for (n, dt, code_, vals), o in zip([d for d in DTYPES if d[0] != "float16"], res.outputs):
            expect((o.datatype, list(o.shape)), (dt, [4]), n)
            got = list(getattr(o.contents, field[dt]))
            if dt == "BYTES":
                got = [b.decode("utf-8") for b in got]
            expect(got, expected_values(code_, vals), n)

    @check("gRPC ModelInfer by label and version")
    def _():
        for version, served in (("canary", "2"), ("stable", "1"), ("1", "1"), ("", "2")):
            req = pb.ModelInferRequest(model_name="mlp", model_version=version)
            req.inputs.add(name="images", datatype="FP32", shape=[1, 784]).contents.fp32_contents.extend([0.5] * 784)
            res = stub.ModelInfer(req, timeout=30)
            expect(res.model_version, served, "version %r" % version)
            expect(len(res.outputs[0].contents.fp32_contents), 10, "probabilities")

    @check("gRPC errors: unknown model, wrong datatype, data length, raw size")
    def _():
        req = half_plus_two_request(False)
        req.model_name = "nope"
        expect_rpc_error(lambda: stub.ModelInfer(req, timeout=30), grpc.StatusCode.NOT_FOUND, "Request for unknown model: 'nope' is not found")
        expect_rpc_error(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), timeout=30), grpc.StatusCode.NOT_FOUND, "unknown model")
        expect_rpc_error(lambda: stub.ModelReady(pb.ModelReadyRequest(name="mlp", version="9"), timeout=30), grpc.StatusCode.NOT_FOUND, "unknown model")
        req = half_plus_two_request(False)
        req.inputs[0].datatype = "FP64"
        expect_rpc_error(lambda: stub.ModelInfer(req, timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "expects 'FP32'")
        req = half_plus_two_request(False)
        req.inputs[0].shape[0] = 4
        expect_rpc_error(lambda: stub.ModelInfer(req, timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "has 3 elements")
        req = half_plus_two_request(True)
        req.raw_input_contents[0] = b"\0" * 8
        expect_rpc_error(lambda: stub.ModelInfer(req, timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "bytes of raw data")

    checks.report()


if __name__ == "__main__":
    main()
