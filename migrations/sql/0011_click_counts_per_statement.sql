-- Clicks are now stored many per statement (group commit). The row trigger of 0005 added
-- each click to a random one of its referrer's 16 counter rows: with several clicks of
-- several referrers in one transaction, two transactions could lock the same rows in
-- opposite orders and deadlock. Count per statement instead: one upsert per referrer,
-- in referrer order (so concurrent statements lock rows in the same order), on the
-- counter row of this connection's shard (so concurrent connections rarely meet).
drop trigger clicks_counted on clicks;
drop function count_click();

create function count_clicks() returns trigger language plpgsql as $$
begin
    insert into click_counts (referrer_id, shard, clicks)
    select referrer_id, (pg_backend_pid() % 16)::smallint, count(*)
    from inserted_clicks
    group by referrer_id
    order by referrer_id
    on conflict (referrer_id, shard) do update set clicks = click_counts.clicks + excluded.clicks;
    return null;
end
$$;
create trigger clicks_counted after insert on clicks
    referencing new table as inserted_clicks
    for each statement execute function count_clicks();
