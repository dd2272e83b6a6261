CREATE TABLE "notification_dead_letters" (
	"message_id" text PRIMARY KEY NOT NULL,
	"queue" text NOT NULL,
	"job_kind" text NOT NULL,
	"job_id" text,
	"job" jsonb NOT NULL,
	"attempts" integer NOT NULL,
	"reason" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_deliveries" (
	"job_id" text NOT NULL,
	"target" text NOT NULL,
	"status" text NOT NULL,
	"attempts" integer DEFAULT 1 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notification_deliveries_job_id_target_pk" PRIMARY KEY("job_id","target")
);
--> statement-breakpoint
CREATE TABLE "push_subscriptions" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"device_id" text NOT NULL,
	"kind" text NOT NULL,
	"token" text,
	"subscription" jsonb,
	"target" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_success_at" timestamp with time zone,
	"failure_count" integer DEFAULT 0 NOT NULL,
	"last_failure_at" timestamp with time zone,
	CONSTRAINT "push_subscriptions_shape" CHECK (("push_subscriptions"."kind" = 'webpush' AND "push_subscriptions"."subscription" IS NOT NULL AND "push_subscriptions"."token" IS NULL) OR ("push_subscriptions"."kind" <> 'webpush' AND "push_subscriptions"."token" IS NOT NULL AND "push_subscriptions"."subscription" IS NULL))
);
--> statement-breakpoint
ALTER TABLE "push_subscriptions" ADD CONSTRAINT "push_subscriptions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "push_subscriptions" ADD CONSTRAINT "push_subscriptions_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notification_dead_letters_created_idx" ON "notification_dead_letters" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "notification_deliveries_updated_idx" ON "notification_deliveries" USING btree ("updated_at");--> statement-breakpoint
CREATE UNIQUE INDEX "push_subscriptions_target_key" ON "push_subscriptions" USING btree ("kind","target");--> statement-breakpoint
CREATE INDEX "push_subscriptions_user_idx" ON "push_subscriptions" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "push_subscriptions_device_idx" ON "push_subscriptions" USING btree ("device_id");