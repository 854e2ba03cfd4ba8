-- 0003_requests_stage: a request's row changes only when it ends.
--
-- requests.stage was updated with every checkpoint, which cost a new row version (and its index
-- entries) per stage per request. The stage a running request has reached is its last
-- checkpoint's; the row is now written when the request is recorded and when it ends.
alter table requests drop column stage;
