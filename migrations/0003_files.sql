CREATE TABLE "file_parts" (
	"file_id" text NOT NULL,
	"part_number" integer NOT NULL,
	"size" bigint NOT NULL,
	"etag" text NOT NULL,
	"uploaded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "file_parts_file_id_part_number_pk" PRIMARY KEY("file_id","part_number"),
	CONSTRAINT "file_parts_number" CHECK ("file_parts"."part_number" >= 1)
);
--> statement-breakpoint
CREATE TABLE "files" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"conversation_id" text,
	"size" bigint NOT NULL,
	"content_type" text NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"r2_key" text NOT NULL,
	"part_size" bigint,
	"part_count" integer NOT NULL,
	"upload_id" text,
	"etag" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "files_size_nonnegative" CHECK ("files"."size" >= 0),
	CONSTRAINT "files_part_size_positive" CHECK ("files"."part_size" IS NULL OR "files"."part_size" > 0),
	CONSTRAINT "files_part_count_positive" CHECK ("files"."part_count" > 0)
);
--> statement-breakpoint
CREATE TABLE "storage_quotas" (
	"user_id" text PRIMARY KEY NOT NULL,
	"quota_bytes" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "storage_quotas_nonnegative" CHECK ("storage_quotas"."quota_bytes" IS NULL OR "storage_quotas"."quota_bytes" >= 0)
);
--> statement-breakpoint
ALTER TABLE "file_parts" ADD CONSTRAINT "file_parts_file_id_files_id_fk" FOREIGN KEY ("file_id") REFERENCES "public"."files"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "files" ADD CONSTRAINT "files_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "files" ADD CONSTRAINT "files_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "storage_quotas" ADD CONSTRAINT "storage_quotas_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "files_r2_key" ON "files" USING btree ("r2_key");--> statement-breakpoint
CREATE INDEX "files_owner_idx" ON "files" USING btree ("owner_id","state");--> statement-breakpoint
CREATE INDEX "files_conversation_idx" ON "files" USING btree ("conversation_id");--> statement-breakpoint
CREATE INDEX "files_pending_expiry_idx" ON "files" USING btree ("expires_at") WHERE "files"."state" = 'pending';