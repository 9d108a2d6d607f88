column api_keys.id text not null
column api_keys.app text
column api_keys.name text not null
column api_keys.prefix text not null
column api_keys.hash bytea not null
column api_keys.scopes text not null
column api_keys.created_at bigint not null
column app_secrets.app text not null
column app_secrets.name text not null
column app_secrets.sealed bytea not null
column app_secrets.created_at bigint not null
column apps.name text not null
column apps.created_at bigint not null
column apps.current_version integer
column cluster_settings.name text not null
column cluster_settings.value bytea not null
column cluster_settings.created_at bigint not null
column cron_state.trigger_id text not null
column cron_state.app text not null
column cron_state.last_fired_at bigint not null
column dead_letters.id text not null
column dead_letters.app text not null
column dead_letters.event_id text not null
column dead_letters.trigger_id text not null
column dead_letters.kind text not null
column dead_letters.handler text not null
column dead_letters.event text not null
column dead_letters.depth integer not null
column dead_letters.attempts integer not null
column dead_letters.last_error text not null
column dead_letters.first_enqueued_at bigint not null
column dead_letters.failed_at bigint not null
column deployments.app text not null
column deployments.version integer not null
column deployments.manifest text not null
column deployments.files text not null
column deployments.created_at bigint not null
column deployments.created_by text
column doc_indexes.app text not null
column doc_indexes.collection text not null
column doc_indexes.field text not null
column docs.app text not null
column docs.collection text not null
column docs.id text collate C not null
column docs.body text not null
column docs.created_at bigint not null
column docs.updated_at bigint not null
column file_blobs.app text not null
column file_blobs.blob text not null
column file_blobs.content bytea not null
column file_blobs.written_at bigint not null
column files.app text not null
column files.path text collate C not null
column files.blob text not null
column files.size bigint not null
column files.content_type text not null
column files.created_at bigint not null
column files.updated_at bigint not null
column kv.app text not null
column kv.key text collate C not null
column kv.value text not null
column kv.expires_at bigint
column kv.updated_at bigint not null
column logs.id bigint not null identity
column logs.app text not null
column logs.at bigint not null
column logs.level text not null
column logs.message text not null
column logs.request_id text
column outbox.id bigint not null identity
column outbox.event_id text not null
column outbox.app text not null
column outbox.trigger_id text not null
column outbox.kind text not null
column outbox.handler text not null
column outbox.event text not null
column outbox.depth integer not null
column outbox.attempts integer not null default 0
column outbox.max_attempts integer not null
column outbox.backoff_base_ms bigint not null
column outbox.backoff_cap_ms bigint not null
column outbox.timeout_ms bigint
column outbox.to_dead_letter boolean not null
column outbox.due_at bigint not null
column outbox.leased_until bigint
column outbox.lease_owner text
column outbox.last_error text
column outbox.created_at bigint not null
column schema_migrations.version integer not null
column schema_migrations.name text not null
column schema_migrations.applied_at bigint not null
column secrets.app text not null
column secrets.name text not null
column secrets.sealed bytea not null
column secrets.created_at bigint not null
column secrets.updated_at bigint not null
column topic_events.app text not null
column topic_events.topic text not null
column topic_events.seq bigint not null
column topic_events.message text not null
column topic_events.published_at bigint not null
column topic_spill.id bigint not null identity
column topic_spill.message text not null
column topic_spill.published_at bigint not null
column topics.app text not null
column topics.name text collate C not null
column topics.external_subscribable boolean not null default false
column topics.auth_mode text not null
column topics.history_events integer
column topics.history_seconds integer
column topics.source text not null
column topics.last_seq bigint not null default 0
column topics.created_at bigint not null
column topics.updated_at bigint not null
column triggers.id text not null
column triggers.app text not null
column triggers.source text not null
column triggers.kind text not null
column triggers.config text not null
column triggers.handler text not null
column triggers.max_attempts integer not null
column triggers.backoff_base_ms bigint not null
column triggers.backoff_cap_ms bigint not null
column triggers.timeout_ms bigint
column triggers.created_at bigint not null
constraint api_keys.api_keys_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint api_keys.api_keys_hash_key UNIQUE (hash)
constraint api_keys.api_keys_pkey PRIMARY KEY (id)
constraint app_secrets.app_secrets_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint app_secrets.app_secrets_pkey PRIMARY KEY (app, name)
constraint apps.apps_pkey PRIMARY KEY (name)
constraint cluster_settings.cluster_settings_pkey PRIMARY KEY (name)
constraint cron_state.cron_state_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint cron_state.cron_state_pkey PRIMARY KEY (trigger_id)
constraint dead_letters.dead_letters_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint dead_letters.dead_letters_pkey PRIMARY KEY (id)
constraint deployments.deployments_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint deployments.deployments_pkey PRIMARY KEY (app, version)
constraint doc_indexes.doc_indexes_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint doc_indexes.doc_indexes_pkey PRIMARY KEY (app, collection, field)
constraint docs.docs_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint docs.docs_pkey PRIMARY KEY (app, collection, id)
constraint file_blobs.file_blobs_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint file_blobs.file_blobs_pkey PRIMARY KEY (app, blob)
constraint files.files_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint files.files_pkey PRIMARY KEY (app, path)
constraint kv.kv_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint kv.kv_pkey PRIMARY KEY (app, key)
constraint logs.logs_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint logs.logs_pkey PRIMARY KEY (id)
constraint outbox.outbox_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint outbox.outbox_pkey PRIMARY KEY (id)
constraint schema_migrations.schema_migrations_pkey PRIMARY KEY (version)
constraint secrets.secrets_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint secrets.secrets_pkey PRIMARY KEY (app, name)
constraint topic_events.topic_events_app_topic_fkey FOREIGN KEY (app, topic) REFERENCES topics(app, name) ON DELETE CASCADE
constraint topic_events.topic_events_pkey PRIMARY KEY (app, topic, seq)
constraint topic_spill.topic_spill_pkey PRIMARY KEY (id)
constraint topics.topics_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint topics.topics_auth_mode_check CHECK ((auth_mode = ANY (ARRAY['public'::text, 'token'::text])))
constraint topics.topics_pkey PRIMARY KEY (app, name)
constraint triggers.triggers_app_fkey FOREIGN KEY (app) REFERENCES apps(name) ON DELETE CASCADE
constraint triggers.triggers_pkey PRIMARY KEY (id)
index CREATE INDEX api_keys_app ON public.api_keys USING btree (app)
index CREATE UNIQUE INDEX api_keys_hash_key ON public.api_keys USING btree (hash)
index CREATE UNIQUE INDEX api_keys_pkey ON public.api_keys USING btree (id)
index CREATE UNIQUE INDEX app_secrets_pkey ON public.app_secrets USING btree (app, name)
index CREATE UNIQUE INDEX apps_pkey ON public.apps USING btree (name)
index CREATE UNIQUE INDEX cluster_settings_pkey ON public.cluster_settings USING btree (name)
index CREATE UNIQUE INDEX cron_state_pkey ON public.cron_state USING btree (trigger_id)
index CREATE INDEX dead_letters_app ON public.dead_letters USING btree (app, failed_at)
index CREATE UNIQUE INDEX dead_letters_pkey ON public.dead_letters USING btree (id)
index CREATE UNIQUE INDEX deployments_pkey ON public.deployments USING btree (app, version)
index CREATE UNIQUE INDEX doc_indexes_pkey ON public.doc_indexes USING btree (app, collection, field)
index CREATE UNIQUE INDEX docs_pkey ON public.docs USING btree (app, collection, id)
index CREATE UNIQUE INDEX file_blobs_pkey ON public.file_blobs USING btree (app, blob)
index CREATE UNIQUE INDEX files_pkey ON public.files USING btree (app, path)
index CREATE INDEX kv_expiry ON public.kv USING btree (expires_at) WHERE (expires_at IS NOT NULL)
index CREATE UNIQUE INDEX kv_pkey ON public.kv USING btree (app, key)
index CREATE INDEX logs_app ON public.logs USING btree (app, id)
index CREATE UNIQUE INDEX logs_pkey ON public.logs USING btree (id)
index CREATE INDEX outbox_app ON public.outbox USING btree (app, id)
index CREATE INDEX outbox_due ON public.outbox USING btree (due_at, id)
index CREATE UNIQUE INDEX outbox_pkey ON public.outbox USING btree (id)
index CREATE UNIQUE INDEX schema_migrations_pkey ON public.schema_migrations USING btree (version)
index CREATE UNIQUE INDEX secrets_pkey ON public.secrets USING btree (app, name)
index CREATE INDEX topic_events_age ON public.topic_events USING btree (published_at)
index CREATE UNIQUE INDEX topic_events_pkey ON public.topic_events USING btree (app, topic, seq)
index CREATE UNIQUE INDEX topic_spill_pkey ON public.topic_spill USING btree (id)
index CREATE UNIQUE INDEX topics_pkey ON public.topics USING btree (app, name)
index CREATE INDEX triggers_app ON public.triggers USING btree (app)
index CREATE UNIQUE INDEX triggers_pkey ON public.triggers USING btree (id)
trigger outbox.outbox_notify
