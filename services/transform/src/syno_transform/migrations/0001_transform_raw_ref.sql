-- raw and ref tables owned by the transform service. Idempotent: applied at every start.
create schema if not exists raw;
create schema if not exists ref;

-- One row per cleaned workbook line, tagged with the snapshot (sha256 of the file) and sheet it came from.
-- Loading a snapshot again replaces its rows (delete + COPY in one transaction).
create table if not exists raw.sales_lines (
    snapshot_id          text    not null,
    source_sheet         text    not null,
    source_row           integer not null,   -- 1-based data row within the sheet (after the header)
    sheet_kind           text    not null,   -- 'hardware' | 'c2'
    sheet_year           integer not null,
    invoice_number       text,
    invoice_date         date,
    ship_date            date,
    customer             text,
    country              text,
    region               text    not null,   -- from ref.countries, 'UNMAPPED' when the country is unknown
    product_raw          text,               -- the Product cell as written
    product              text,               -- trimmed, upper-cased, leading "(...)" tag dropped
    product_tag          text,               -- the dropped "(...)" tag, without parentheses
    item_code            text,
    quantity             bigint,
    currency             text,
    price                double precision,
    total_local          double precision,
    revenue_usd          double precision,   -- null when the currency is unmapped (never guessed)
    tt_discount          double precision,
    discount             double precision,
    delivery_from        text,
    ship_to              text,
    comments             text,
    product_type         text    not null,   -- product_rules.csv stage 'type', 'UNMAPPED' for a blank product
    sub_cat              text    not null,   -- product_rules.csv stage 'sub_cat' or C2-<service>-<capacity>-<plan>
    tier                 text,               -- 'T1'..'T5' for SVR-RM sub-categories, else null
    c2_service_family    text,               -- C2 rows only; 'UNKNOWN' when no keyword matches
    c2_capacity          text,
    c2_plan              text,
    is_country_unmapped  boolean not null,
    is_currency_unmapped boolean not null,
    is_product_unmapped  boolean not null,
    extras               jsonb,              -- columns outside the contract, kept as {header: value}
    primary key (snapshot_id, source_sheet, source_row)
);

-- Reference data, one version per content hash. The current version of each file is the latest loaded.
create table if not exists ref.mapping_versions (
    file_name   text        not null,
    sha256      text        not null,
    rows        integer     not null,
    loaded_at   timestamptz not null default now(),
    primary key (file_name, sha256)
);
create table if not exists ref.countries      (country text primary key, region text not null);
create table if not exists ref.exchange_rates (currency text primary key, rate_to_usd double precision not null);
create table if not exists ref.device_to_bay  (product text primary key, bays integer not null);
create table if not exists ref.product_rules (
    stage text not null, "order" integer not null, when_type text, pattern text not null,
    and_pattern text, type text, sub_cat text, primary key (stage, "order")
);
create table if not exists ref.c2_keywords (
    field text not null, "order" integer not null, keyword text not null, value text not null,
    primary key (field, "order")
);
