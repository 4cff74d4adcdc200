-- CreateTable
CREATE TABLE "nodes" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "agent_version" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'online',
    "driver_version" TEXT,
    "cuda_version" TEXT,
    "reboot_pending" BOOLEAN NOT NULL DEFAULT false,
    "inventory_stale" BOOLEAN NOT NULL DEFAULT false,
    "last_contact_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "nodes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "gpus" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "uuid" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "memory_total_mib" INTEGER,
    "compute_capability" TEXT,
    "mig_mode" TEXT,
    "parent_uuid" TEXT,
    "mig_profile" TEXT,
    "present" BOOLEAN NOT NULL DEFAULT true,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "gpus_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "driver_observations" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "driver_version" TEXT,
    "cuda_version" TEXT,
    "reboot_pending" BOOLEAN NOT NULL DEFAULT false,
    "observed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "driver_observations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workloads" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workloads_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "benchmark_runs" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "gpu_id" UUID NOT NULL,
    "workload_id" UUID NOT NULL,
    "dataset_size" INTEGER NOT NULL,
    "reason" TEXT NOT NULL,
    "strategy" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'running',
    "stages" TEXT[],
    "calibration_key" TEXT NOT NULL,
    "driver_version" TEXT,
    "cuda_version" TEXT,
    "trial_count" INTEGER NOT NULL DEFAULT 0,
    "gpu_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "error" TEXT,
    "changes" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "benchmark_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "trials" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "gpu_id" UUID NOT NULL,
    "stage" TEXT NOT NULL,
    "purpose" TEXT NOT NULL,
    "layers" INTEGER NOT NULL,
    "hidden_channels" INTEGER NOT NULL,
    "batch_size" INTEGER NOT NULL,
    "iterations" INTEGER NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'assigned',
    "failure_kind" TEXT,
    "failure_summary" TEXT,
    "device_peak_mib" DOUBLE PRECISION,
    "process_peak_mib" DOUBLE PRECISION,
    "framework_peak_allocated_bytes" BIGINT,
    "framework_peak_reserved_bytes" BIGINT,
    "step_seconds_mean" DOUBLE PRECISION,
    "step_seconds_p50" DOUBLE PRECISION,
    "step_seconds_min" DOUBLE PRECISION,
    "step_seconds_max" DOUBLE PRECISION,
    "parameter_count" BIGINT,
    "gpu_seconds" DOUBLE PRECISION,
    "wall_seconds" DOUBLE PRECISION,
    "assigned_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "trials_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "cost_models" (
    "id" UUID NOT NULL,
    "calibration_key" TEXT NOT NULL,
    "workload_id" UUID NOT NULL,
    "gpu_model" TEXT NOT NULL,
    "memory_total_mib" INTEGER NOT NULL,
    "driver_version" TEXT,
    "cuda_version" TEXT,
    "run_id" UUID NOT NULL,
    "trial_count" INTEGER NOT NULL,
    "snapshot" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "cost_models_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "recommended_configs" (
    "id" UUID NOT NULL,
    "node_id" UUID NOT NULL,
    "gpu_id" UUID NOT NULL,
    "workload_id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "stage" TEXT NOT NULL,
    "layers" INTEGER NOT NULL,
    "hidden_channels" INTEGER NOT NULL,
    "batch_size" INTEGER NOT NULL,
    "parameters" BIGINT NOT NULL,
    "peak_mib" DOUBLE PRECISION,
    "step_seconds" DOUBLE PRECISION,
    "cycle_minutes" DOUBLE PRECISION,
    "in_window" BOOLEAN,
    "dataset_size" INTEGER NOT NULL,
    "candidates_from" TEXT NOT NULL,
    "verified_trial_id" UUID,
    "evidence" JSONB NOT NULL DEFAULT '{}',
    "current" BOOLEAN NOT NULL DEFAULT true,
    "stale_at" TIMESTAMPTZ(3),
    "stale_reason" TEXT,
    "change_reason" TEXT,
    "last_verified_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "recommended_configs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "nodes_name_key" ON "nodes"("name");

-- CreateIndex
CREATE UNIQUE INDEX "gpus_node_id_uuid_key" ON "gpus"("node_id", "uuid");

-- CreateIndex
CREATE INDEX "driver_observations_node_id_observed_at_idx" ON "driver_observations"("node_id", "observed_at");

-- CreateIndex
CREATE UNIQUE INDEX "workloads_name_version_key" ON "workloads"("name", "version");

-- CreateIndex
CREATE INDEX "benchmark_runs_node_id_started_at_idx" ON "benchmark_runs"("node_id", "started_at");

-- CreateIndex
CREATE INDEX "benchmark_runs_status_idx" ON "benchmark_runs"("status");

-- CreateIndex
CREATE INDEX "trials_run_id_idx" ON "trials"("run_id");

-- CreateIndex
CREATE INDEX "trials_status_assigned_at_idx" ON "trials"("status", "assigned_at");

-- CreateIndex
CREATE INDEX "cost_models_calibration_key_created_at_idx" ON "cost_models"("calibration_key", "created_at");

-- CreateIndex
CREATE INDEX "cost_models_workload_id_gpu_model_idx" ON "cost_models"("workload_id", "gpu_model");

-- CreateIndex
CREATE INDEX "recommended_configs_node_id_current_idx" ON "recommended_configs"("node_id", "current");

-- CreateIndex
CREATE INDEX "recommended_configs_gpu_id_workload_id_stage_current_idx" ON "recommended_configs"("gpu_id", "workload_id", "stage", "current");

-- AddForeignKey
ALTER TABLE "gpus" ADD CONSTRAINT "gpus_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "driver_observations" ADD CONSTRAINT "driver_observations_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "benchmark_runs" ADD CONSTRAINT "benchmark_runs_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "benchmark_runs" ADD CONSTRAINT "benchmark_runs_gpu_id_fkey" FOREIGN KEY ("gpu_id") REFERENCES "gpus"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "benchmark_runs" ADD CONSTRAINT "benchmark_runs_workload_id_fkey" FOREIGN KEY ("workload_id") REFERENCES "workloads"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trials" ADD CONSTRAINT "trials_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "benchmark_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trials" ADD CONSTRAINT "trials_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trials" ADD CONSTRAINT "trials_gpu_id_fkey" FOREIGN KEY ("gpu_id") REFERENCES "gpus"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "cost_models" ADD CONSTRAINT "cost_models_workload_id_fkey" FOREIGN KEY ("workload_id") REFERENCES "workloads"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "cost_models" ADD CONSTRAINT "cost_models_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "benchmark_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recommended_configs" ADD CONSTRAINT "recommended_configs_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recommended_configs" ADD CONSTRAINT "recommended_configs_gpu_id_fkey" FOREIGN KEY ("gpu_id") REFERENCES "gpus"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recommended_configs" ADD CONSTRAINT "recommended_configs_workload_id_fkey" FOREIGN KEY ("workload_id") REFERENCES "workloads"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "recommended_configs" ADD CONSTRAINT "recommended_configs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "benchmark_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
