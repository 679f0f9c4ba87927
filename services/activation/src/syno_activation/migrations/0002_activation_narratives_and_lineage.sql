-- Storylines carry the narratives of their region and customers; the activation log says "lineage".
alter table activation.storylines
    add column region_narrative text,
    add column customer_narratives text;
alter table ops.activation_log rename column catalog to lineage;
