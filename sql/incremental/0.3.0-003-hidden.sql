-- RecVector 0.3.0: per-user hiding ("not interested", "don't show this again").

-- Entities a user asked not to be recommended, for good (until NULL) or until a time. Written by
-- recvector.hide() / recvector.unhide(); read by rec_recommend and recvector.explain.
CREATE TABLE recvector.hidden (
    user_id    text NOT NULL,
    entity_id  text NOT NULL,
    hidden_at  timestamptz NOT NULL DEFAULT now(),
    until      timestamptz,
    PRIMARY KEY (user_id, entity_id),
    CHECK (until IS NULL OR until > hidden_at)
);
COMMENT ON TABLE recvector.hidden IS
  'Entities a user hid (recvector.hide): never recommended to that user while until is NULL or in the future; expired rows are ignored, and removed when the same user hides something again.';
SELECT pg_catalog.pg_extension_config_dump('recvector.hidden', '');
