-- Hand-edited after drizzle-kit generate: WITHOUT ROWID kept (drizzle-kit does not model it, see 0002), and the
-- PRAGMA foreign_keys lines it adds dropped (no key refers to these tables). The rollups are keyed by hour before
-- dimension, so one link-hour's rows share a page: a consumer batch writes about a page per link instead of one per
-- link and dimension. click_rollups loses workspace_id: a link's workspace is checked before its rollups are read.
CREATE TABLE `__new_click_rollups` (
	`link_id` text NOT NULL,
	`hour` integer NOT NULL,
	`dimension` text NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`link_id`, `hour`, `dimension`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_click_rollups`("link_id", "hour", "dimension", "value", "humans", "bots") SELECT "link_id", "hour", "dimension", "value", "humans", "bots" FROM `click_rollups`;--> statement-breakpoint
DROP TABLE `click_rollups`;--> statement-breakpoint
ALTER TABLE `__new_click_rollups` RENAME TO `click_rollups`;--> statement-breakpoint
CREATE TABLE `__new_workspace_rollups` (
	`workspace_id` text NOT NULL,
	`hour` integer NOT NULL,
	`dimension` text NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `hour`, `dimension`, `value`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_workspace_rollups`("workspace_id", "hour", "dimension", "value", "humans", "bots") SELECT "workspace_id", "hour", "dimension", "value", "humans", "bots" FROM `workspace_rollups`;--> statement-breakpoint
DROP TABLE `workspace_rollups`;--> statement-breakpoint
ALTER TABLE `__new_workspace_rollups` RENAME TO `workspace_rollups`;