# minimal: FROM scratch, only the library, model, smoke program and their runtime libraries.
FROM scratch AS runtime
COPY runtime-libs/ /lib/
COPY interp/ @INTERP_DIR@/
COPY opt/ @PREFIX@/
COPY tmp/ /tmp/
ENV LD_LIBRARY_PATH=@PREFIX@/lib:/lib

FROM runtime AS test
RUN ["@PREFIX@/bin/tflite-smoke", "@PREFIX@/share/add.tflite", "/tmp/smoke.passed"]

FROM runtime
COPY --from=test /tmp/smoke.passed @PREFIX@/share/smoke.passed
USER @USER@
ENTRYPOINT ["@PREFIX@/bin/tflite-smoke"]
CMD ["@PREFIX@/share/add.tflite"]
