-- Hand-edited after drizzle-kit generate (drizzle-kit does not model WITHOUT ROWID, so it never undoes it): the
-- rollup tables are stored WITHOUT ROWID, clustered by their composite primary key, so each upsert on the click
-- path touches one B-tree instead of a table and its key index.
CREATE TABLE `workspace_rollups` (
	`workspace_id` text NOT NULL,
	`dimension` text NOT NULL,
	`hour` integer NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `dimension`, `hour`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
DROP INDEX `click_rollups_workspace_idx`;--> statement-breakpoint
DROP INDEX `clicks_workspace_at_idx`;--> statement-breakpoint
DROP INDEX `clicks_batch_idx`;--> statement-breakpoint
DROP INDEX `clicks_at_idx`;--> statement-breakpoint
ALTER TABLE `clicks` DROP COLUMN `batch`;--> statement-breakpoint
DROP INDEX `orphan_visits_batch_idx`;--> statement-breakpoint
ALTER TABLE `orphan_visits` DROP COLUMN `batch`;--> statement-breakpoint
CREATE TABLE `__new_click_rollups` (
	`workspace_id` text NOT NULL,
	`link_id` text NOT NULL,
	`dimension` text NOT NULL,
	`hour` integer NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`link_id`, `dimension`, `hour`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_click_rollups` SELECT `workspace_id`, `link_id`, `dimension`, `hour`, `value`, `humans`, `bots` FROM `click_rollups`;--> statement-breakpoint
DROP TABLE `click_rollups`;--> statement-breakpoint
ALTER TABLE `__new_click_rollups` RENAME TO `click_rollups`;--> statement-breakpoint
CREATE TABLE `__new_orphan_rollups` (
	`domain` text NOT NULL,
	`hour` integer NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`domain`, `hour`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_orphan_rollups` SELECT `domain`, `hour`, `humans`, `bots` FROM `orphan_rollups`;--> statement-breakpoint
DROP TABLE `orphan_rollups`;--> statement-breakpoint
ALTER TABLE `__new_orphan_rollups` RENAME TO `orphan_rollups`;--> statement-breakpoint
-- Workspace statistics read workspace_rollups from now on: carry over what was counted before it existed.
INSERT INTO `workspace_rollups` (`workspace_id`, `dimension`, `hour`, `value`, `humans`, `bots`)
SELECT `workspace_id`, `dimension`, `hour`, `value`, sum(`humans`), sum(`bots`) FROM `click_rollups`
GROUP BY `workspace_id`, `dimension`, `hour`, `value`;
