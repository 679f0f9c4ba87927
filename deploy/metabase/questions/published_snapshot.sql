-- Sentinel: the snapshot every dashboard shows. The activation service reads this card after a refresh and
-- looks for the new snapshot id in its rows (SYNO_ACTIVATION__METABASE__SENTINEL_CARD_ID).
with
-- include: _published_snapshot.sql

final as (
    select
        published_snapshot.snapshot_id,
        (select max(quarter) from marts.sellout_quarterly) as latest_quarter
    from published_snapshot
)

select * from final
