-- Names in full: the position of a batch in its run is its batch_number (work batches schema version 2).
alter table forecast.work_results rename column batch_no to batch_number;
