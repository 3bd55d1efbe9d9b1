# The operator image the chart deploys (not built in this repo's CI: no Docker engine there).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && useradd --uid 10001 releaseguard
USER 10001
ENTRYPOINT ["releaseguard"]
CMD ["run", "--all-namespaces"]
