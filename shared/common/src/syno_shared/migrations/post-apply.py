"""What each role may do (syno_shared.access), granted again after every migration run (a yoyo post-apply hook).

Run by the owner role that applies the migrations, after any package's migrations, so a table a later
migration adds is covered at once. It first takes back everything the roles hold on the schemas the
migrations own (but what a role owns itself: the transform's stable views in marts), then grants the list
below and nothing else, so a grant removed here is gone on the next run. A missing schema or table is
skipped: each service applies only its own migrations when it migrates at start-up.

What the transform creates while it runs (each build's schemas and tables, the stable views in marts) is
covered by default privileges: forecast and activation read the builds' marts, syno_reader the stable views.
"""

from yoyo import step  # type: ignore[import-untyped]  # yoyo ships no type information

GRANTS = r"""
do $grants$
declare
    managed_roles constant text[] := array[
        'syno_ingestion', 'syno_transform', 'syno_forecast', 'syno_activation', 'syno_reader', 'syno_monitor'
    ];
    managed_schemas constant text[] := array['ops', 'raw', 'ref', 'marts', 'forecast', 'activation'];
    build_schema constant text := '^b_[0-9a-f]+_[0-9a-f]+_(staging|intermediate|marts)$';
    item record;
    sequence_name regclass;
begin
    -- 1. Take back what the roles hold, but what they own.
    for item in
        select n.nspname, r.rolname from pg_namespace as n cross join pg_roles as r
        where n.nspname = any(managed_schemas) and r.rolname = any(managed_roles)
    loop
        execute format('revoke all on schema %I from %I', item.nspname, item.rolname);
    end loop;
    for item in
        select c.oid::regclass as relation, c.relkind, r.rolname
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace cross join pg_roles as r
        where n.nspname = any(managed_schemas) and r.rolname = any(managed_roles)
            and c.relkind in ('r', 'v', 'm', 'p', 'f', 'S') and c.relowner <> r.oid
    loop
        execute format(
            'revoke all on %s %s from %I',
            case item.relkind when 'S' then 'sequence' else 'table' end, item.relation, item.rolname
        );
    end loop;
    for item in select rolname from pg_roles where rolname = any(managed_roles) loop
        execute format('revoke create on database %I from %I', current_database(), item.rolname);
    end loop;

    -- 2. Schemas.
    for item in
        select g.role_name, g.schema_name, g.privileges
        from (values
            ('syno_ingestion', 'ops', 'usage'),
            ('syno_transform', 'ops', 'usage'),
            ('syno_transform', 'raw', 'usage'),
            ('syno_transform', 'ref', 'usage'),
            ('syno_transform', 'marts', 'usage, create'),  -- the stable views it re-points at each publication
            ('syno_forecast', 'ops', 'usage'),
            ('syno_forecast', 'forecast', 'usage'),
            ('syno_activation', 'ops', 'usage'),
            ('syno_activation', 'forecast', 'usage'),
            ('syno_activation', 'activation', 'usage'),
            ('syno_reader', 'marts', 'usage'),
            ('syno_reader', 'forecast', 'usage'),
            ('syno_reader', 'activation', 'usage'),
            ('syno_monitor', 'ops', 'usage'),
            ('syno_monitor', 'forecast', 'usage')
        ) as g (role_name, schema_name, privileges)
        join pg_namespace as n on n.nspname = g.schema_name
        join pg_roles as r on r.rolname = g.role_name
    loop
        execute format('grant %s on schema %I to %I', item.privileges, item.schema_name, item.role_name);
    end loop;

    -- 3. Tables ('schema.*': every table of the schema), with the sequences of their serial columns.
    for item in
        select g.role_name, g.privileges, c.oid as relation_id, c.oid::regclass as relation
        from (values
            -- The stage protocol every service runs: its run rows and its completions (the outbox).
            ('syno_ingestion', 'ops.stage_runs', 'select, insert, update'),
            ('syno_ingestion', 'ops.stage_completions', 'select, insert, update'),
            ('syno_transform', 'ops.stage_runs', 'select, insert, update'),
            ('syno_transform', 'ops.stage_completions', 'select, insert, update'),
            ('syno_forecast', 'ops.stage_runs', 'select, insert, update'),
            ('syno_forecast', 'ops.stage_completions', 'select, insert, update'),
            ('syno_activation', 'ops.stage_runs', 'select, insert, update'),
            ('syno_activation', 'ops.stage_completions', 'select, insert, update'),
            -- ingestion: what it accepted from the share.
            ('syno_ingestion', 'ops.ingestion_manifest', 'select, insert'),
            ('syno_ingestion', 'ops.ingestion_files', 'select, insert'),
            ('syno_ingestion', 'ops.heartbeats', 'select, insert, update'),
            -- transform: loads raw and ref, records gates, lineage and builds; dbt reads raw and ref.
            ('syno_transform', 'raw.*', 'select, insert, delete'),
            ('syno_transform', 'ref.*', 'select, insert, delete, truncate'),
            ('syno_transform', 'ops.quality_results', 'select, insert, update'),
            ('syno_transform', 'ops.lineage', 'select, insert, update'),
            ('syno_transform', 'ops.unmapped_values', 'select, insert, delete'),
            ('syno_transform', 'ops.snapshot_builds', 'select, insert, update'),
            ('syno_transform', 'ops.published_snapshot', 'select, insert'),
            ('syno_transform', 'ops.schedules', 'select, insert, update'),  -- the weekly re-forecast
            ('syno_transform', 'ops.schedule_runs', 'select, insert, update'),
            -- forecast: its forecasts and the work queue's results.
            ('syno_forecast', 'forecast.*', 'select, insert, update, delete'),
            ('syno_forecast', 'ops.forecast_runs', 'select, insert'),
            -- activation: reads the forecasts, writes storylines, its log, alerts and outbox.
            ('syno_activation', 'forecast.*', 'select'),
            ('syno_activation', 'activation.*', 'select, insert, delete'),
            ('syno_activation', 'ops.activation_log', 'select, insert, update'),
            ('syno_activation', 'ops.alerts', 'select, insert, update'),
            ('syno_activation', 'ops.activation_outbox', 'select, insert, update'),
            -- activation: the deadlines it pages for, from the watcher's heartbeat, and its schedules.
            ('syno_activation', 'ops.deadline_alerts', 'select, insert, update'),
            ('syno_activation', 'ops.heartbeats', 'select'),
            ('syno_activation', 'ops.schedules', 'select, insert, update'),
            ('syno_activation', 'ops.schedule_runs', 'select, insert, update'),
            -- Metabase: what people read.
            ('syno_reader', 'marts.*', 'select'),
            ('syno_reader', 'forecast.*', 'select'),
            ('syno_reader', 'activation.*', 'select'),
            -- Grafana: what its dashboards chart (deploy/grafana/dashboards).
            ('syno_monitor', 'ops.stage_runs', 'select'),
            ('syno_monitor', 'ops.forecast_runs', 'select'),
            ('syno_monitor', 'ops.alerts', 'select'),
            ('syno_monitor', 'ops.ingestion_manifest', 'select'),
            ('syno_monitor', 'ops.ingestion_files', 'select'),
            ('syno_monitor', 'ops.quality_results', 'select'),
            ('syno_monitor', 'ops.heartbeats', 'select'),
            ('syno_monitor', 'ops.deadline_alerts', 'select'),
            ('syno_monitor', 'ops.schedules', 'select'),
            ('syno_monitor', 'ops.schedule_runs', 'select'),
            ('syno_monitor', 'forecast.*', 'select')
        ) as g (role_name, pattern, privileges)
        join pg_roles as r on r.rolname = g.role_name
        join pg_namespace as n on n.nspname = split_part(g.pattern, '.', 1)
        join pg_class as c on c.relnamespace = n.oid and c.relkind in ('r', 'v', 'm', 'p')
            and (split_part(g.pattern, '.', 2) in ('*', c.relname))
    loop
        execute format('grant %s on table %s to %I', item.privileges, item.relation, item.role_name);
        if position('insert' in item.privileges) > 0 then
            for sequence_name in
                select s.oid::regclass from pg_depend as d join pg_class as s on s.oid = d.objid and s.relkind = 'S'
                where d.refobjid = item.relation_id and d.deptype in ('a', 'i')
            loop
                execute format('grant usage on sequence %s to %I', sequence_name, item.role_name);
            end loop;
        end if;
    end loop;

    -- 4. The transform builds each snapshot in schemas of its own (CREATE on the database); forecast and
    --    activation read the builds' marts, syno_reader the stable views the transform points at them.
    execute format('grant create on database %I to syno_transform', current_database());
    alter default privileges for role syno_transform grant usage on schemas to syno_forecast, syno_activation;
    alter default privileges for role syno_transform grant select on tables to syno_forecast, syno_activation;
    if exists (select from pg_namespace where nspname = 'marts') then
        alter default privileges for role syno_transform in schema marts grant select on tables to syno_reader;
    end if;
    -- Builds made before these defaults existed.
    for item in select nspname from pg_namespace where nspname ~ build_schema loop
        execute format('grant usage on schema %I to syno_forecast, syno_activation', item.nspname);
        execute format('grant select on all tables in schema %I to syno_forecast, syno_activation', item.nspname);
    end loop;
end
$grants$;
"""

steps = [step(GRANTS)]
