//! `prefscope dpo`'s computation with the device doing the work: core's report, with the
//! objective, the ranking accuracies and Diffusion-DPO rows evaluated by our kernels (the
//! calibration of the margins is core's, on the CPU: one pass over the pairs).

use std::borrow::Cow;

use prefscope_core::io::read::Preferences;
use prefscope_core::preference::report::{add_diagnostics, add_ranking_metrics, table_lengths, Report, ReportRequest};

use crate::preference::DpoError;
use crate::Gpu;

impl Gpu {
    /// The GPU twin of `prefscope_core::preference::report::report`.
    pub async fn report<'a>(&self, data: &'a Preferences, request: &ReportRequest) -> Result<Report<'a>, DpoError> {
        match data {
            Preferences::Dpo(table) => {
                let objective = request.dpo_objective()?;
                let mut evaluation = self.evaluate_dpo(&objective, table).await?;
                let lengths = table_lengths(table);
                let accuracy = self
                    .ranking_accuracy(
                        &table.policy_chosen_logps,
                        &table.policy_rejected_logps,
                        lengths.as_ref().map(|(c, r)| (c.as_slice(), r.as_slice())),
                    )
                    .await?;
                add_ranking_metrics(table, request.pairwise_beta(), accuracy, &mut evaluation.metrics);
                add_diagnostics(table, &evaluation.pairs.margin, &mut evaluation.metrics);
                Ok(Report::new(Cow::Borrowed(&table.id), evaluation, data, request.bins)?)
            }
            Preferences::Diffusion(table) => {
                let (ids, evaluation) = self.diffusion(table, request.diffusion_objective()?).await?;
                Ok(Report::new(Cow::Owned(ids), evaluation, data, request.bins)?)
            }
            // KTO on unpaired rows is a few passes over per-batch groups: core computes it.
            Preferences::Unpaired(_) => Ok(prefscope_core::preference::report::report(data, request)?),
        }
    }
}
