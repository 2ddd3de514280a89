"""A stand-in for a CUDA build of torch, enough for CMakeLists.txt's question to the build's Python
(torch.utils.cmake_prefix_path, torch.version.cuda): tests/scripts/python_with_cuda_torch_stub.sh."""
import types

utils = types.SimpleNamespace(cmake_prefix_path="/nonexistent/torch/share/cmake")
version = types.SimpleNamespace(cuda="13.2")
