-- Whether a line is Synology C2 is decided once, by the cleaning (its product type is a C2 type),
-- and carried on the line, so that dbt reads the decision instead of re-deciding it from the sheet.
alter table raw.sales_lines add column is_c2 boolean;

-- Lines loaded before this column: the cleaning gave the C2 fields to C2 lines and to no other line.
update raw.sales_lines set is_c2 = c2_service_family is not null;

alter table raw.sales_lines alter column is_c2 set not null;
