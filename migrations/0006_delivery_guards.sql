-- Guards on outbound webhooks: changes to an endpoint land only on the version they read, an
-- attempt's result only on the lease it was made under, and test sends are rate-limited.

-- Every write to an endpoint row bumps it: a PATCH or a rotation that read revision N lands only
-- if the row is still at N (otherwise it reads again), so a rotation cannot be lost and a PATCH
-- cannot re-enable an endpoint that was disabled meanwhile.
ALTER TABLE webhook_endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
-- After a rotation with a grace period: 0 while the seed header (X-Webhook-Signature) is still
-- signed with the previous secret on first attempts, 1 once a delivery signed with the new
-- secret has been accepted (or when there is no rotation in progress).
ALTER TABLE webhook_endpoints ADD COLUMN seed_signs_new INTEGER NOT NULL DEFAULT 1 CHECK (seed_signs_new IN (0, 1));
-- Test sends in the current minute-long window, and when the window opened.
ALTER TABLE webhook_endpoints ADD COLUMN tests_window_us INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN tests_in_window INTEGER NOT NULL DEFAULT 0;

-- The lease an attempt in flight holds (a random token): its result lands only while the
-- delivery is still pending under that lease, so a late result cannot undo a later one.
ALTER TABLE webhook_deliveries ADD COLUMN lease TEXT;
