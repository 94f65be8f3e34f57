# PostgreSQL 15 + pgvector + PL/Python + RecVector, built with the same steps as `make install`.
#   docker build -t recvector .
#   docker run -e POSTGRES_HOST_AUTH_METHOD=trust -p 5432:5432 recvector
# Every database created from template1 afterwards has the extension available; the default
# database gets it installed on first start.
FROM postgres:15-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends make python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/recvector
COPY Makefile ./
COPY scripts ./scripts
COPY extension ./extension
COPY releases ./releases
COPY sql ./sql
COPY python ./python
COPY models ./models
COPY examples ./examples

RUN bash scripts/install-deps.sh \
 && make install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
 && rm -rf /var/lib/apt/lists/* /root/.cache

RUN echo "CREATE EXTENSION IF NOT EXISTS recvector CASCADE;" > /docker-entrypoint-initdb.d/10-recvector.sql
