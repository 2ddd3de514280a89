# The one place of pyramidion's version: CMakeLists.txt (project VERSION) and pyproject.toml
# (scikit-build-core's regex provider) read this line.
__version__ = "0.1.0"
