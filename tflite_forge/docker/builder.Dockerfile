# tflite-forge builder image. Two stages:
#   base       Debian (the glibc floor of every result) + native compilers, cmake, ninja, ccache
#   toolchain  base + the target's Debian cross packages, and a record of the toolchain's versions
# Built with a local base image and no registry (docker build; podman build --pull=never).
# The tag is a hash of this file, the package lists and the base image's ID (tflite_forge/image.py).
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS base
ARG BASE_PACKAGES
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends ${BASE_PACKAGES} \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# Mount points: an empty named volume takes these modes, so any --user can write to it.
RUN mkdir -p /build /ccache /out /src /deps /host /toolchains \
 && chmod 1777 /build /ccache /out /deps /host

FROM base AS toolchain
ARG CROSS_PACKAGES
ARG TRIPLET
RUN if [ -n "${CROSS_PACKAGES}" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends ${CROSS_PACKAGES} \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi
# What build-info.json and the build plan need to know about this image, read without guessing.
RUN mkdir -p /etc/tflite-forge \
 && { echo "glibc=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)"; \
      echo "gcc=$(${TRIPLET}-gcc -dumpfullversion)"; \
      echo "gxx=$(${TRIPLET}-g++ -dumpfullversion)"; \
      echo "host_gcc=$(gcc -dumpfullversion)"; \
      echo "cmake=$(cmake --version | head -n1 | cut -d' ' -f3)"; \
      echo "ninja=$(ninja --version)"; \
      echo "ccache=$(ccache --version | head -n1 | cut -d' ' -f3)"; \
      echo "debian=$(cat /etc/debian_version)"; \
      echo "triplet=${TRIPLET}"; } > /etc/tflite-forge/builder.env \
 && cat /etc/tflite-forge/builder.env
ENV CCACHE_DIR=/ccache HOME=/tmp
WORKDIR /build
