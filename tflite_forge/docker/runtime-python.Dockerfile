# python: python3 + the C library driven through ctypes.
FROM @BASE@ AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY opt/ @PREFIX@/
ENV LD_LIBRARY_PATH=@PREFIX@/lib

FROM runtime AS test
RUN ["python3", "@PREFIX@/share/smoke_ctypes.py", "@PREFIX@/lib/libtensorflowlite_c.so", "@PREFIX@/share/add.tflite", "/tmp/smoke.passed"]

FROM runtime
COPY --from=test /tmp/smoke.passed @PREFIX@/share/smoke.passed
USER @USER@
ENTRYPOINT ["python3", "@PREFIX@/share/smoke_ctypes.py", "@PREFIX@/lib/libtensorflowlite_c.so", "@PREFIX@/share/add.tflite"]
