CREATE TABLE `parked_clicks` (
	`id` text PRIMARY KEY NOT NULL,
	`bucket` integer NOT NULL,
	`row` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `reshard_buckets` (
	`bucket` integer PRIMARY KEY NOT NULL,
	`from_shard` integer NOT NULL,
	`to_shard` integer NOT NULL,
	`phase` text NOT NULL,
	`links` integer DEFAULT 0 NOT NULL,
	`clicks` integer DEFAULT 0 NOT NULL,
	`checksum` text
);
--> statement-breakpoint
CREATE TABLE `reshard_marks` (
	`name` text PRIMARY KEY NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `reshard_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`source` text NOT NULL,
	`target` text NOT NULL,
	`phase` text NOT NULL,
	`started_at` integer NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE TABLE `shard_layout` (
	`id` integer PRIMARY KEY NOT NULL,
	`epoch` integer NOT NULL,
	`shards` text NOT NULL
);
