"""Installs the genesis_launch package from a checkout, offline:

    pip install --no-build-isolation ./python        # or: python3 python/setup.py install

The native module is built by the project's CMake (the library's sources are next to this
folder), for the interpreter running this script. Needs CMake, a C++20 compiler and the
Debian packages of README.md (Boost 1.81, yaml-cpp, OpenSSL, pybind11-dev, python3-dev).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent


def project_version() -> str:
    text = (SOURCE / "CMakeLists.txt").read_text()
    match = re.search(r"project\(GenesisLaunch VERSION ([0-9.]+)", text)
    return match.group(1) if match else "0.0.0"


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        build = pathlib.Path(self.build_temp).resolve() / "cmake"
        build.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", "-S", str(SOURCE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}", "-DGENESIS_LAUNCH_PYTHON=ON",
            "-DGENESIS_LAUNCH_BUILD_TESTS=OFF", "-DGENESIS_LAUNCH_BUILD_CLI=OFF",
            "-DGENESIS_LAUNCH_BUILD_EMULATOR=OFF", "-DGENESIS_LAUNCH_BUILD_BENCH=OFF",
            "-DGENESIS_LAUNCH_INSTALL=OFF",
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        jobs = str(os.cpu_count() or 2)
        subprocess.check_call(["cmake", "--build", str(build), "--target", "genesis_launch_python", "-j", jobs])
        built = next((build / "python" / "genesis_launch").glob("_native*.so"))
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)


setup(
    name="genesis-launch",
    version=project_version(),
    description="Evaluate candidate programs for Genesis / ShinkaEvolve, locally or in E2B sandboxes",
    license="MIT",
    python_requires=">=3.9",
    packages=["genesis_launch"],
    package_dir={"genesis_launch": "genesis_launch"},
    package_data={"genesis_launch": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("genesis_launch._native")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
