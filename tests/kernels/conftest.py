"""The kernel tests run every Triton kernel under the CPU interpreter at tiny shapes.

`TRITON_INTERPRET` is read when a kernel is decorated, so it is set here, before any test
module imports a `kernels.*` Triton module.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"
