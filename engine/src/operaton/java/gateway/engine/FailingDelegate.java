package gateway.engine;

import org.operaton.bpm.engine.delegate.DelegateExecution;
import org.operaton.bpm.engine.delegate.JavaDelegate;

/** Service task of process "gateway-failing": always throws (Operaton flavour). */
public class FailingDelegate implements JavaDelegate {

  public static final String MESSAGE = "gateway-failing: deliberate failure in FailingDelegate";

  @Override
  public void execute(DelegateExecution execution) {
    throw new RuntimeException(MESSAGE);
  }
}
