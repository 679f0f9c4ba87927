-- The snapshot the dashboards show: two CTEs, and a comma for the question's own CTEs that follow
-- (a question starts `with` then a line `-- include: _published_snapshot.sql`; `syno metabase provision` inlines it).
-- The stable names marts.<mart> are views over the published build's schema, b_<first 12 hex of the
-- snapshot>_<8 hex>_marts (syno_transform.snapshots); the forecasts and storylines carry the full snapshot id.
-- syno_reader may read the view definitions (pg_get_viewdef) but not ops.published_snapshot.
published_build as (
    select substring(
        pg_get_viewdef(to_regclass('marts.sellout_quarterly'))
        from 'b_([0-9a-f]{12})_[0-9a-f]{8}_marts'
    ) as snapshot_head
),

published_snapshot as (
    select distinct carried.snapshot_id
    from (
        select snapshot_id from forecast.svr_rm
        union
        select snapshot_id from activation.storylines
    ) as carried
    join published_build on left(carried.snapshot_id, 12) = published_build.snapshot_head
),
