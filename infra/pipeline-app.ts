/**
 * Builds the CDK app of `infra/app.ts`: one stack from validated context settings, checked by cdk-nag.
 * @module
 */
import { App, Validations, type AppProps } from 'aws-cdk-lib'
import { AwsSolutionsChecks } from 'cdk-nag'
import { PipelineStack } from './pipeline-stack.js'
import { settingsFromContext } from './settings.js'

export const STACK_NAME = 'AgeGenderPipeline'

/**
 * @param props e.g. `{ context }` in tests; the CLI passes context through the environment.
 * @example createApp({ context: { region: 'eu-west-1' } }).synth()
 */
export function createApp(props: AppProps = {}): App {
  const app = new App(props)
  const settings = settingsFromContext(app.node)
  new PipelineStack(app, STACK_NAME, {
    description: 'Age/gender estimation: dataset bucket, Batch GPU trainer, predict endpoint',
    settings,
    // only what the user named: never CDK_DEFAULT_ACCOUNT/REGION, which the CLI fills with guesses
    ...(settings.account || settings.region
      ? {
          env: {
            ...(settings.account ? { account: settings.account } : {}),
            ...(settings.region ? { region: settings.region } : {}),
          },
        }
      : {}),
  })
  // any unacknowledged finding fails synthesis (cdk-nag 3 runs as a policy validation plugin)
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
  return app
}
