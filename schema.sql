-- Benchmark Engine schema for PostgreSQL and Supabase.
-- Idempotent: run it on an empty database, or again on one made by an older version, to bring it up to date.
-- The MVP's columns keep their names and types; every column added since is nullable.

create table if not exists runs (
    id uuid primary key,
    run_name text,
    triggered_by text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);

alter table runs add column if not exists status text;          -- running | completed | failed | interrupted | abandoned
alter table runs add column if not exists mode text;            -- live | simulated
alter table runs add column if not exists host text;            -- BENCHMARK_HOST or the hostname
alter table runs add column if not exists region text;          -- BENCHMARK_REGION
alter table runs add column if not exists tool_version text;
alter table runs add column if not exists settings jsonb;       -- prompt, max_tokens, stream, repeat, ...
alter table runs add column if not exists pid integer;          -- its process: a run left running by a dead one is abandoned
alter table runs add column if not exists kind text;            -- sequential | load
alter table runs add column if not exists summary jsonb;        -- what a load run found: where its sweeps stopped

create table if not exists benchmark_results (
    id uuid primary key,
    run_id uuid references runs(id),
    provider text,
    model text,
    input_tokens integer,
    output_tokens integer,
    latency_ms double precision,
    cost_usd double precision,
    success boolean,
    error_message text,
    response_text text,
    created_at timestamptz not null default now()
);

alter table benchmark_results add column if not exists started_at timestamptz;         -- wall time the request began
alter table benchmark_results add column if not exists ttft_ms double precision;       -- first content/reasoning token
alter table benchmark_results add column if not exists answer_ttft_ms double precision; -- first answer (non-reasoning) token
alter table benchmark_results add column if not exists tokens_per_second double precision; -- (output - 1) / (latency - ttft)
alter table benchmark_results add column if not exists cached_tokens integer;
alter table benchmark_results add column if not exists reasoning_tokens integer;
alter table benchmark_results add column if not exists finish_reason text;
alter table benchmark_results add column if not exists request_id text;
alter table benchmark_results add column if not exists stream boolean;
alter table benchmark_results add column if not exists attempts integer;
alter table benchmark_results add column if not exists error_type text;      -- auth | rate_limit | timeout | not_found | ...
alter table benchmark_results add column if not exists http_status integer;
alter table benchmark_results add column if not exists response_truncated boolean;
alter table benchmark_results add column if not exists cost_source text;      -- pricing | provider
alter table benchmark_results add column if not exists price_input_per_mtok numeric;
alter table benchmark_results add column if not exists price_cached_input_per_mtok numeric;
alter table benchmark_results add column if not exists price_output_per_mtok numeric;
alter table benchmark_results add column if not exists price_as_of text;
alter table benchmark_results add column if not exists endpoint text;         -- base URL, credentials removed
alter table benchmark_results add column if not exists upstream_provider text; -- OpenRouter: who served the request
alter table benchmark_results add column if not exists token_source text;     -- usage | tokenize
alter table benchmark_results add column if not exists workload text;         -- default | tiers | a prompt file's name
alter table benchmark_results add column if not exists prompt_id text;        -- its id, else a hash of its content
alter table benchmark_results add column if not exists input_tier integer;    -- a tier's nominal input tokens
alter table benchmark_results add column if not exists round integer;         -- from 1
alter table benchmark_results add column if not exists position integer;      -- in its round, from 1
alter table benchmark_results add column if not exists cache_mode text;       -- bust | warm | off
alter table benchmark_results add column if not exists answer_ok boolean;     -- the answer met its expect
alter table benchmark_results add column if not exists ratelimit_remaining_requests integer; -- x-ratelimit-remaining-*
alter table benchmark_results add column if not exists ratelimit_remaining_tokens integer;
alter table benchmark_results add column if not exists concurrency integer;   -- a load run's level
alter table benchmark_results add column if not exists level_started_at timestamptz;
alter table benchmark_results add column if not exists start_lag_ms double precision; -- harness delay in load runs
alter table benchmark_results add column if not exists node text;             -- host (and Ray node) of a load request
alter table benchmark_results add column if not exists api text;              -- chat_completions (also when NULL) |
                                                                               -- responses | messages | generate_content
alter table benchmark_results add column if not exists cache_write_tokens integer; -- input written to the prompt cache
alter table benchmark_results add column if not exists price_cache_write_per_mtok numeric;
alter table benchmark_results add column if not exists session_id text;       -- one conversation, in one round
alter table benchmark_results add column if not exists turn integer;          -- its request, from 1
alter table benchmark_results add column if not exists tool_calls text;       -- JSON: [{"name", "arguments"}] as sent
alter table benchmark_results add column if not exists tool_args_ms double precision; -- the last call's arguments in
alter table benchmark_results add column if not exists json_valid boolean;    -- the answer followed its schema
alter table benchmark_results add column if not exists tool_ok boolean;       -- the first answer's call met expect_tool
alter table benchmark_results add column if not exists itl_p50_ms double precision; -- a stream's gaps between output
alter table benchmark_results add column if not exists itl_p99_ms double precision; -- events (inter-token latency)
alter table benchmark_results add column if not exists itl_max_ms double precision; -- its longest stall
alter table benchmark_results add column if not exists output_events integer; -- chunks carrying output
alter table benchmark_results add column if not exists request_rate double precision; -- an open loop's requests/s
alter table benchmark_results add column if not exists scheduled_at timestamptz; -- when its schedule had it start

create index if not exists benchmark_results_run_id_idx on benchmark_results (run_id);
create index if not exists benchmark_results_provider_model_created_idx
    on benchmark_results (provider, model, created_at);
create index if not exists runs_started_at_idx on runs (started_at);
-- report: its figures read from this index alone (no answer texts), in time order for --since and --window; the
-- alert rules read their windows (the last hour, the baseline before it) by its leading column
create index if not exists benchmark_results_report_idx on benchmark_results (created_at) include (run_id, provider,
    model, success, ttft_ms, latency_ms, tokens_per_second, cost_usd, output_tokens, error_type, upstream_provider,
    input_tier, prompt_id, answer_ok);

-- Alerts of `python main.py watch` and of the evaluation after each run: one row per episode, from firing to resolved.
-- Several probe machines share this table; the unique index lets only one of them open (and announce) an alert.
create table if not exists alerts (
    id uuid primary key,
    rule text not null,                       -- outage | slo_breach | regression
    provider text not null,
    model text not null,
    metric text,                              -- null for outage; ttft_ms | latency_ms | tokens_per_second | success_rate
    state text not null,                      -- firing | resolved
    started_at timestamptz not null,
    last_seen_at timestamptz not null,        -- the last evaluation that found it firing
    resolved_at timestamptz,
    details jsonb,                            -- the figures, the window, the run id
    run_id uuid,                              -- the run after which it started firing (null: `watch`)
    host text,                                -- the machine whose evaluation opened it
    notified_firing_at timestamptz,           -- set when a machine took the firing notification (null: pending)
    notified_resolved_at timestamptz,         -- the same for the resolved notification
    notify_attempts integer,                  -- notifications that could not be sent
    notify_error text                         -- why the last one could not be sent (never the URL)
);

create unique index if not exists alerts_one_firing_idx
    on alerts (rule, provider, model, coalesce(metric, '')) where state = 'firing';
create index if not exists alerts_resolved_at_idx on alerts (resolved_at);

-- Only the service role (which bypasses row-level security) reads and writes: no policy for anon/authenticated.
alter table runs enable row level security;
alter table benchmark_results enable row level security;
alter table alerts enable row level security;
