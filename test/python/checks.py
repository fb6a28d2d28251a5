"""What modelgate's independent Python clients share: protoc over our protos/, and named checks
reported as "ok - <check>" / "not ok - <check>: <why>" lines, then "N passed, M failed"."""
import os
import subprocess
import sys
import traceback


def protoc(protos, workdir, files):
    """Compiles `files` (paths under `protos`) into `workdir`; exits 2 if protoc fails."""
    import grpc_tools

    # The bundled well-known types come first, so google/protobuf/* resolve to the installed runtime.
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", include, "-I", protos,
           "--python_out", workdir, "--grpc_python_out", workdir] + list(files)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stdout.write("protoc failed:\n" + result.stdout + result.stderr)
        sys.exit(2)


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name):
        """Decorator: runs the function at once and records its failure, if any, under `name`."""
        def run(fn):
            try:
                fn()
                self.results.append((name, None))
            except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
                self.results.append((name, "".join(traceback.format_exception_only(type(e), e)).strip()))
            return fn
        return run

    @staticmethod
    def expect(actual, expected, what=""):
        if actual != expected:
            raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))

    def report(self):
        """Prints every result and the totals; exits 1 if any check failed."""
        failed = 0
        for name, error in self.results:
            if error is None:
                print("ok - %s" % name)
            else:
                failed += 1
                print("not ok - %s: %s" % (name, error))
        print("%d passed, %d failed" % (len(self.results) - failed, failed))
        sys.exit(1 if failed else 0)
