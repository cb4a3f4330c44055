-- Hand-edited after drizzle-kit generate (the row it starts with): daily rollups stop being written on every batch
-- for the day still open; the consumer fills each UTC day from its slots once it has closed. Every day before today
-- (UTC, at migration) was written on every batch until now, so it is complete; today is refilled from its slots when
-- it closes (the filling replaces the days it fills), and read from the slots until then.
CREATE TABLE `rollup_watermark` (
	`id` integer PRIMARY KEY NOT NULL,
	`days_until` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `rollup_watermark`("id", "days_until") VALUES (1, CAST(strftime('%s', 'now') AS integer) / 86400 * 86400000);
