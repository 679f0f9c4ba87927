-- Text a spreadsheet would run as a formula, neutralised where people export it from Metabase (CSV, XLSX):
-- the SQL twin of syno_activation.safe_text.neutralise_formula (a single quote in front of text starting,
-- after spaces, tabs and line breaks, with = + - @ or their fullwidth forms, or starting with a tab or a
-- carriage return; plain numbers such as -12.5 stay as they are). tests/activation/test_safe_text_sql.py
-- checks both on the same cases. The questions under deploy/metabase/questions wrap names in it.
create or replace function activation.spreadsheet_safe(value text) returns text
    language sql immutable strict parallel safe
as $$
    select case
        when left(value, 1) in (E'\t', E'\r') then '''' || value
        when left(ltrim(value, E' \t\r\n\u3000'), 1) in ('=', '+', '-', '@', E'\uFF1D', E'\uFF0B', E'\uFF0D', E'\uFF20')
            and ltrim(value, E' \t\r\n\u3000') !~ '^[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?%?$'
            then '''' || value
        else value
    end
$$;
