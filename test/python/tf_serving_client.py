#!/usr/bin/env python3
"""An independent TF Serving gRPC client for modelgate's tests.

It compiles modelgate's protos/ with grpc_tools (protoc), then calls Predict, GetModelMetadata,
GetModelStatus and the health service on a running gateway serving the test repository
(test/helpers/repo.ts: half_plus_two v123, add_sub, mlp v1/v2 with labels stable/canary, broken).

Usage: tf_serving_client.py --address HOST:PORT --protos DIR --workdir DIR
Prints one "ok - <check>" or "not ok - <check>: <why>" line per check, then "N passed, M failed";
exits 1 if any check failed, 2 if the protos do not compile.
"""
import argparse
import os
import struct
import sys

from checks import Checks, protoc


def compile_protos(protos, workdir):
    files = []
    for top in ("tensorflow", "tensorflow_serving", "grpc"):
        for dirpath, _, names in os.walk(os.path.join(protos, top)):
            files += [os.path.relpath(os.path.join(dirpath, n), protos) for n in names if n.endswith(".proto")]
    protoc(protos, workdir, sorted(files))
    # Generated modules import each other as packages rooted at workdir. `grpc/health/v1` must not
    # shadow the grpc runtime package, so workdir/grpc gets no __init__.py and is grafted onto it.
    for dirpath, _, names in os.walk(workdir):
        if os.path.abspath(dirpath) != os.path.abspath(os.path.join(workdir, "grpc")) and "__init__.py" not in names:
            open(os.path.join(dirpath, "__init__.py"), "w").close()
    sys.path.insert(0, workdir)
    import grpc

    grpc.__path__.append(os.path.join(workdir, "grpc"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--protos", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    compile_protos(args.protos, args.workdir)

    import grpc
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    channel = grpc.insecure_channel(args.address)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    checks = Checks()
    check, expect = checks.check, checks.expect

    @check("Predict half_plus_two with float_val")
    def _():
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "half_plus_two"
        x = req.inputs["x"]
        x.dtype = types_pb2.DT_FLOAT
        x.tensor_shape.dim.add().size = 3
        x.float_val.extend([1.0, 2.0, 5.0])
        res = predictions.Predict(req, timeout=30)
        y = res.outputs["y"]
        expect(y.dtype, types_pb2.DT_FLOAT, "dtype")
        expect([d.size for d in y.tensor_shape.dim], [3], "shape")
        expect(list(y.float_val), [2.5, 3.0, 4.5], "values")
        expect(res.model_spec.name, "half_plus_two", "name")
        expect(res.model_spec.version.value, 123, "version")
        expect(res.model_spec.signature_name, "serving_default", "signature")

    @check("Predict add_sub with tensor_content and output_filter")
    def _():
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "add_sub"
        for alias, values in (("input_x", [1.0, 2.0]), ("input_y", [10.0, 20.0])):
            t = req.inputs[alias]
            t.dtype = types_pb2.DT_FLOAT
            t.tensor_shape.dim.add().size = 1
            t.tensor_shape.dim.add().size = 2
            t.tensor_content = struct.pack("<2f", *values)
        req.output_filter.append("result_sub")
        res = predictions.Predict(req, timeout=30)
        expect(sorted(res.outputs.keys()), ["result_sub"], "outputs")
        expect(list(res.outputs["result_sub"].float_val), [-9.0, -18.0], "values")

    @check("Predict mlp by version label")
    def _():
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "mlp"
        req.model_spec.version_label = "stable"
        t = req.inputs["images"]
        t.dtype = types_pb2.DT_FLOAT
        t.tensor_shape.dim.add().size = 1
        t.tensor_shape.dim.add().size = 784
        t.float_val.append(0.5)
        res = predictions.Predict(req, timeout=30)
        expect(res.model_spec.version.value, 1, "version")
        expect(len(res.outputs["probabilities"].float_val), 10, "probabilities")

    @check("Predict unknown model fails with NOT_FOUND")
    def _():
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "nope"
        try:
            predictions.Predict(req, timeout=30)
        except grpc.RpcError as e:
            expect(e.code(), grpc.StatusCode.NOT_FOUND, "code")
            expect(e.details(), "Servable not found for request: Latest(nope)", "details")
            return
        raise AssertionError("no error")

    @check("GetModelMetadata add_sub unpacks a SignatureDefMap")
    def _():
        req = get_model_metadata_pb2.GetModelMetadataRequest()
        req.model_spec.name = "add_sub"
        req.metadata_field.append("signature_def")
        res = predictions.GetModelMetadata(req, timeout=30)
        expect(res.model_spec.name, "add_sub", "name")
        expect(res.model_spec.version.value, 1, "version")
        sigs = get_model_metadata_pb2.SignatureDefMap()
        if not res.metadata["signature_def"].Unpack(sigs):
            raise AssertionError("Any does not hold a SignatureDefMap: %s" % res.metadata["signature_def"].type_url)
        sig = sigs.signature_def["serving_default"]
        expect(sig.method_name, "tensorflow/serving/predict", "method_name")
        expect(sorted(sig.inputs.keys()), ["input_x", "input_y"], "inputs")
        expect(sorted(sig.outputs.keys()), ["result_add", "result_sub"], "outputs")
        expect(sig.inputs["input_x"].dtype, types_pb2.DT_FLOAT, "dtype")
        expect([d.size for d in sig.inputs["input_x"].tensor_shape.dim], [-1, 2], "shape")

    @check("GetModelStatus mlp and broken")
    def _():
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "mlp"
        res = models.GetModelStatus(req, timeout=30)
        expect([(s.version, s.state) for s in res.model_version_status],
               [(2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
                (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)], "versions")
        req.model_spec.name = "broken"
        res = models.GetModelStatus(req, timeout=30)
        status = res.model_version_status[0]
        expect(status.state, get_model_status_pb2.ModelVersionStatus.END, "state")
        from tensorflow.core.protobuf import error_codes_pb2
        expect(status.status.error_code, error_codes_pb2.DATA_LOSS, "error_code")

    @check("Health Check")
    def _():
        for service in ("", "ModelService", "PredictionService"):
            res = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            expect(res.status, health_pb2.HealthCheckResponse.SERVING, service)

    checks.report()


if __name__ == "__main__":
    main()
