# vmcp as a container: the gateway with the common plugins, serving Streamable HTTP.
#
#   docker build -t vmcp .
#   docker run --rm --network host vmcp            # http://127.0.0.1:8000/mcp on the host
#
# The gateway binds loopback unless an auth driver checks callers, so with a published port
# (-p 8000:8000) give it a configuration with [auth] and --host 0.0.0.0; mount a volume on
# /home/vmcp/.vmcp to keep its configuration, personas, tokens and installed servers.

FROM python:3.12-slim AS build
RUN pip install --no-cache-dir "uv>=0.5"
WORKDIR /src
COPY . .
RUN uv build --all-packages --out-dir /dist

FROM python:3.12-slim
COPY --from=build /dist /dist
# Every wheel of this repository by its file, never by name: the name vmcp on PyPI is
# another project's.
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist \
    && useradd --create-home --uid 10001 vmcp
USER 10001
ENV VMCP_HOME=/home/vmcp/.vmcp
VOLUME ["/home/vmcp/.vmcp"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]
ENTRYPOINT ["vmcp"]
CMD ["start", "-t", "http", "--port", "8000"]
