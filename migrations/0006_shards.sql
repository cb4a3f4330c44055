CREATE TABLE `link_buckets` (
	`link_id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`domain` text NOT NULL,
	`bucket` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `link_buckets_domain_idx` ON `link_buckets` (`domain`,`workspace_id`);--> statement-breakpoint
CREATE TABLE `shard_buckets` (
	`bucket` integer PRIMARY KEY NOT NULL,
	`shard` integer NOT NULL
);
