-- Hand-written after drizzle-kit generate (which recreated the rollup tables without WITHOUT ROWID and copied a
-- `slot` column the old tables do not have). Rollups move from UTC hours to 15-minute slots, so that local hours and
-- days add up in every zone (Asia/Kolkata +05:30, Asia/Kathmandu +05:45...); the totals (dimension `all`) move to
-- tables of their own, which series read as one range; and daily rollups per UTC day are added for long ranges.
-- Every count is kept: an existing hourly row cannot be split, so it becomes the hour's first slot (its `hour` is
-- that slot's start, unchanged), and the daily rows are the sums of the hourly ones. Totals and days are filled
-- from the hourly rows before the `all` rows leave click_rollups.
CREATE TABLE `click_totals` (
	`link_id` text NOT NULL,
	`slot` integer NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`link_id`, `slot`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `click_totals`("link_id", "slot", "humans", "bots") SELECT "link_id", "hour", "humans", "bots" FROM `click_rollups` WHERE "dimension" = 'all';--> statement-breakpoint
CREATE TABLE `click_days` (
	`link_id` text NOT NULL,
	`day` integer NOT NULL,
	`dimension` text NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`link_id`, `day`, `dimension`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `click_days`("link_id", "day", "dimension", "value", "humans", "bots") SELECT "link_id", "hour" / 86400000 * 86400000, "dimension", "value", sum("humans"), sum("bots") FROM `click_rollups` GROUP BY 1, 2, 3, 4;--> statement-breakpoint
ALTER TABLE `click_rollups` RENAME COLUMN `hour` TO `slot`;--> statement-breakpoint
DELETE FROM `click_rollups` WHERE "dimension" = 'all';--> statement-breakpoint
CREATE TABLE `workspace_totals` (
	`workspace_id` text NOT NULL,
	`slot` integer NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `slot`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `workspace_totals`("workspace_id", "slot", "humans", "bots") SELECT "workspace_id", "hour", "humans", "bots" FROM `workspace_rollups` WHERE "dimension" = 'all';--> statement-breakpoint
CREATE TABLE `workspace_days` (
	`workspace_id` text NOT NULL,
	`day` integer NOT NULL,
	`dimension` text NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `day`, `dimension`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `workspace_days`("workspace_id", "day", "dimension", "value", "humans", "bots") SELECT "workspace_id", "hour" / 86400000 * 86400000, "dimension", "value", sum("humans"), sum("bots") FROM `workspace_rollups` GROUP BY 1, 2, 3, 4;--> statement-breakpoint
ALTER TABLE `workspace_rollups` RENAME COLUMN `hour` TO `slot`;--> statement-breakpoint
DELETE FROM `workspace_rollups` WHERE "dimension" = 'all';--> statement-breakpoint
ALTER TABLE `orphan_rollups` RENAME COLUMN `hour` TO `slot`;
