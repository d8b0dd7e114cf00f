# wheel: a prebuilt tflite-runtime wheel (downloaded on the host) installed offline.
FROM @BASE@ AS install
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
COPY wheels/ /wheels/
RUN python3 -m pip install --no-index --find-links /wheels --target /opt/site --break-system-packages \
    @WHEELS@

FROM @BASE@ AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY opt/ @PREFIX@/
ENV LD_LIBRARY_PATH=@PREFIX@/lib

COPY --from=install /opt/site /opt/site
ENV PYTHONPATH=/opt/site

FROM runtime AS test
RUN ["python3", "@PREFIX@/share/smoke_tflite_runtime.py", "@PREFIX@/share/add.tflite", "/tmp/smoke.passed"]

FROM runtime
COPY --from=test /tmp/smoke.passed @PREFIX@/share/smoke.passed
USER @USER@
# python3 is the entrypoint so other scripts can run here too (invoke test --model --interpreter
# tflite-runtime); with no arguments the image runs the smoke script.
ENTRYPOINT ["python3"]
CMD ["@PREFIX@/share/smoke_tflite_runtime.py", "@PREFIX@/share/add.tflite"]
