CREATE TABLE "key_packages" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"device_id" text NOT NULL,
	"package" text NOT NULL,
	"digest" text NOT NULL,
	"last_resort" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_at" timestamp with time zone,
	"claimed_by" text
);
--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "session_id" text;--> statement-breakpoint
ALTER TABLE "key_packages" ADD CONSTRAINT "key_packages_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "key_packages" ADD CONSTRAINT "key_packages_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "key_packages_digest_key" ON "key_packages" USING btree ("digest");--> statement-breakpoint
CREATE INDEX "key_packages_available_idx" ON "key_packages" USING btree ("device_id","last_resort","claimed_at");--> statement-breakpoint
CREATE UNIQUE INDEX "key_packages_last_resort_key" ON "key_packages" USING btree ("device_id") WHERE "key_packages"."last_resort";--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE set null ON UPDATE no action;