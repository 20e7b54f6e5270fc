-- A read-only role for Grafana's PostgreSQL data source (dashboards/grafana.json), on PostgreSQL or Supabase.
-- schema.sql turns row-level security on with no policy, so a role that does not bypass it reads no row: this
-- grants SELECT on the columns the dashboard reads, and a read-only policy on their tables, and nothing else: not the
-- answers (response_text), error texts, the runs' settings or hosts. Idempotent; run again, it takes back the
-- table-wide SELECT an earlier version of this file granted.
-- Then give the role a password of your own (never commit it):  alter role grafana_reader password '...';
do $$
begin
    if not exists (select from pg_roles where rolname = 'grafana_reader') then
        create role grafana_reader login;
    end if;
end
$$;

grant usage on schema public to grafana_reader;
revoke select on runs, benchmark_results from grafana_reader;
grant select (id, mode) on runs to grafana_reader;
grant select (run_id, provider, model, created_at, success, ttft_ms, latency_ms, cost_usd, output_tokens)
    on benchmark_results to grafana_reader;
drop policy if exists grafana_reader_read on runs;
create policy grafana_reader_read on runs for select to grafana_reader using (true);
drop policy if exists grafana_reader_read on benchmark_results;
create policy grafana_reader_read on benchmark_results for select to grafana_reader using (true);

-- The alerts table, where the database has it (alert rules: python main.py watch).
do $$
begin
    if to_regclass('alerts') is not null then
        revoke select on alerts from grafana_reader;
        grant select (rule, provider, model, metric, state, started_at, last_seen_at, details)
            on alerts to grafana_reader;
        drop policy if exists grafana_reader_read on alerts;
        create policy grafana_reader_read on alerts for select to grafana_reader using (true);
    end if;
end
$$;
