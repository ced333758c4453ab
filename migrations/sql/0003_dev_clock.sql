-- Offset of the local time-travel clock (DEV_TIME_TRAVEL); one row, zero unless a local
-- installation moved it forward.
create table dev_clock (
    id boolean primary key default true check (id),
    offset_ms bigint not null default 0
);
insert into dev_clock default values;
