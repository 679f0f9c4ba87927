-- Least privilege (syno_shared.access): one login role per service, a read-only role for Metabase
-- (syno_reader) and one for Grafana (syno_monitor). Roles belong to the cluster, so they are created only
-- if missing, without login and without a password: the embedded runtime or the deployment's setup job
-- (syno_shared.provision) lets them log in with passwords it holds. What each role may do is granted by
-- post-apply.py, run after every migration so tables added later are covered too.
do $roles$
declare
    role_name text;
begin
    foreach role_name in array array[
        'syno_ingestion', 'syno_transform', 'syno_forecast', 'syno_activation', 'syno_reader', 'syno_monitor'
    ] loop
        if not exists (select from pg_roles where rolname = role_name) then
            execute format('create role %I nologin', role_name);
        end if;
    end loop;
end
$roles$;

-- The BI roles' sessions start read-only (their grants already allow nothing else).
alter role syno_reader set default_transaction_read_only = on;
alter role syno_monitor set default_transaction_read_only = on;

-- Objects an earlier version created as the one all-powerful role, which the transform now manages as
-- syno_transform: the stable names in marts (it replaces and drops them) and the builds' schemas (it drops
-- them past retention; it reads their tables when it publishes them again).
do $owners$
declare
    item record;
begin
    for item in
        select c.oid::regclass as relation, case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
            else 'table' end as kind
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where c.relkind in ('r', 'v', 'm', 'p')
            and (n.nspname = 'marts' or n.nspname ~ '^b_[0-9a-f]+_[0-9a-f]+_(staging|intermediate|marts)$')
            and c.relowner <> 'syno_transform'::regrole
    loop
        execute format('alter %s %s owner to syno_transform', item.kind, item.relation);
    end loop;
    for item in
        select nspname from pg_namespace
        where nspname ~ '^b_[0-9a-f]+_[0-9a-f]+_(staging|intermediate|marts)$' and nspowner <> 'syno_transform'::regrole
    loop
        execute format('alter schema %I owner to syno_transform', item.nspname);
    end loop;
end
$owners$;
