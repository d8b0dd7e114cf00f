"""python -m tflite_forge.miniature DEST [VERSION]: generate a miniature release and list its URLs."""

import sys

from .generate import write_release


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m tflite_forge.miniature DEST [VERSION]", file=sys.stderr)
        return 2
    release = write_release(argv[0], *argv[1:])
    print(f"recipe: {release.recipe_path}")
    print(f"www:    {release.www_root}")
    print(f"tensorflow {release.version}: {release.tensorflow_url} sha256={release.tensorflow_sha256}")
    for dep in release.dependencies:
        print(f"{dep.name}: {dep.url} sha256={dep.sha256} -> {dep.cmake_variable}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
