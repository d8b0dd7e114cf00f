# The runtime stage blog posts write (python3 + pip + numpy from apt): bench_package.py's size reference,
# built from the same local base image as the runtime flavors it is compared with.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-numpy \
 && rm -rf /var/lib/apt/lists/*
