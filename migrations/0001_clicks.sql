CREATE TABLE `click_rollups` (
	`workspace_id` text NOT NULL,
	`link_id` text NOT NULL,
	`dimension` text NOT NULL,
	`hour` integer NOT NULL,
	`value` text NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`link_id`, `dimension`, `hour`, `value`)
);
--> statement-breakpoint
CREATE INDEX `click_rollups_workspace_idx` ON `click_rollups` (`workspace_id`,`dimension`,`hour`);--> statement-breakpoint
CREATE TABLE `clicks` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`link_id` text NOT NULL,
	`at` integer NOT NULL,
	`country` text,
	`device` text NOT NULL,
	`browser` text NOT NULL,
	`os` text NOT NULL,
	`referrer` text,
	`bot` integer NOT NULL,
	`batch` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `clicks_link_at_idx` ON `clicks` (`link_id`,`at`,`id`);--> statement-breakpoint
CREATE INDEX `clicks_workspace_at_idx` ON `clicks` (`workspace_id`,`at`,`id`);--> statement-breakpoint
CREATE INDEX `clicks_batch_idx` ON `clicks` (`batch`);--> statement-breakpoint
CREATE INDEX `clicks_at_idx` ON `clicks` (`at`);--> statement-breakpoint
CREATE TABLE `orphan_rollups` (
	`domain` text NOT NULL,
	`hour` integer NOT NULL,
	`humans` integer DEFAULT 0 NOT NULL,
	`bots` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`domain`, `hour`)
);
--> statement-breakpoint
CREATE TABLE `orphan_visits` (
	`id` text PRIMARY KEY NOT NULL,
	`domain` text NOT NULL,
	`slug` text NOT NULL,
	`at` integer NOT NULL,
	`bot` integer NOT NULL,
	`batch` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `orphan_visits_batch_idx` ON `orphan_visits` (`batch`);--> statement-breakpoint
CREATE INDEX `orphan_visits_domain_at_idx` ON `orphan_visits` (`domain`,`at`);