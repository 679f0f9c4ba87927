-- A storyline is an opportunity: one lever (win_back, re_engage, protect_pipeline, cross_sell_c2,
-- upsell_rackmount) on the accounts of one quarter, region and segment, with the USD at stake, whether the cell
-- is anecdotal, its rank within the quarter and the accounts behind it (a JSON list). The key gains the lever.
alter table activation.storylines
    add column lever              text,
    add column is_current_quarter boolean,
    add column opportunity_rank   integer,
    add column customers          integer,
    add column previous_revenue   double precision,
    add column year_ago_revenue   double precision,
    add column usd_at_stake       double precision,
    add column is_anecdotal       boolean,
    add column confidence         text check (confidence in ('high', 'medium', 'low')),
    add column accounts           jsonb;
-- Rows written before this migration had one storyline per cell and none of the above: they keep their numbers
-- under lever 'legacy' (replaying the snapshot's forecast.published rewrites them as opportunities).
update activation.storylines set lever = 'legacy' where lever is null;
alter table activation.storylines alter column lever set not null;
alter table activation.storylines drop constraint storylines_pkey;
alter table activation.storylines add primary key (snapshot_id, quarter, region, segment, lever);
-- The dashboard's question: the current quarter's opportunities of a snapshot, by rank.
create index storylines_current_rank on activation.storylines (snapshot_id, opportunity_rank)
    where is_current_quarter;
